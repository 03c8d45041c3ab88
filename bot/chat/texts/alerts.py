"""/alerts and the alert pushes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from bot.alerts import ALERT_SPEC, ALERT_SPECS, Alert, AlertKind, AlertPrefs
from bot.chat.i18n import Msg, Plural
from bot.chat.texts.formatting import car_label, check, joined, on_off
from bot.chat.texts.status import OPEN_NAMES, STATUS_OPEN
from bot.store import StoredVehicle

ALERTS_TIMING = Msg(
    "I check alerts whenever I look at a car: every minute while it is plugged in, otherwise every "
    '15 minutes, so an alert "after N minutes" can come up to 15 minutes later.'
)
ALERTS_TIMING_CARDATA = Msg(
    "A car linked through BMW CarData reports to me itself: I check alerts at each report and every minute, "
    'so an alert "after N minutes" comes at most a minute late, as soon as the car has reported.'
)
# Said once for all of an owner's quiet cars ({cars}: their names), as it is the same for each.
ALERTS_QUIET_CARS = Plural(
    "ℹ️ {cars} reports to BMW CarData only when it is switched off and when a charge reaches 100 % (as every "
    'i3 does), so I cannot watch it in between: "Left open" never comes (it reports before you lock it), '
    '"Not charging" only when two of its reports N minutes apart show it, and the charge level and the '
    "plug-in reminder go by its last report, which can be hours old.",
    "ℹ️ {cars} report to BMW CarData only when they are switched off and when a charge reaches 100 % (as "
    'every i3 does), so I cannot watch them in between: "Left open" never comes (they report before you lock '
    'them), "Not charging" only when two reports of a car N minutes apart show it, and the charge level and '
    "the plug-in reminder go by each car's last report, which can be hours old.",
)


# Alerts: /alerts and the pushes
ALERTS_ASK = Msg(
    "🔔 <b>Alerts about your cars</b>\n{lines}\n\nTap an alert to switch it on or off, ➖ ➕ to change it.\n"
    "{timing}"
)


@dataclass(frozen=True)
class AlertTexts:
    """An alert kind's words; the rest of the kind is its row in bot/alerts.py `ALERT_SPECS` (a test checks
    that each kind has both). Here, not there: the catalogue is read from this module, and alerts.py knows no
    chat."""

    name: str  # its button, its toast and its line's title
    line: str  # its line in /alerts: {value}, and {time} for an alert at a time of day
    unit: str = ""  # after its value
    push: str = ""  # the alert itself: {car}, {soc}, {value} (the monthly summary: texts/monthly.py)
    soc_line: bool = False  # the push adds the charge level on a line of its own


ALERT_TEXTS: dict[AlertKind, AlertTexts] = {
    AlertKind.LEVEL: AlertTexts(
        Msg("Charge level"),
        Msg("tell me when charging reaches {value} % (not when it started above)"),
        "%",
        Msg("🔋 {car} has reached {soc} (your alert: {value} %)."),
    ),
    AlertKind.STALL: AlertTexts(
        Msg("Not charging"),
        Msg("plugged in but not charging for {value} min (not while the car waits for its charging window)"),
        Msg("min"),
        Msg("🔌 {car} is plugged in but has not been charging for {value} min."),
        soc_line=True,
    ),
    AlertKind.PLUG: AlertTexts(
        Msg("Plug-in reminder"),
        Msg("at {time}, if the charge is below {value} % and the car is not plugged in"),
        "%",
        Msg("🔌 Plug in {car}? It is at {soc}, below your {value} %, and not plugged in."),
    ),
    AlertKind.OPEN: AlertTexts(
        Msg("Left open"),
        Msg("unlocked, or a door or window open, {value} min after the car was parked"),
        Msg("min"),
        Msg("⚠️ {car} has been parked for {value} min and is not closed up:"),
    ),
    AlertKind.MONTHLY: AlertTexts(
        Msg("Monthly summary"),
        Msg(
            "on the 1st at 9:00, last month of each car in one message: distance, charges, kWh, cost and "
            "consumption against the month before, with a chart"
        ),
    ),
}
ALERT_TIME_BUTTON = Msg("🕘 {sign} {minutes} min")
ALERT_UNLOCKED = Msg("🔓 unlocked")
ALERT_AT = Msg(" at {time}")  # after the reminder's value: "20 % at 21:00"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} %"


def clock_time(minute: int) -> str:
    """Minutes after midnight as HH:MM."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def alerts_menu(prefs: AlertPrefs, cardata: bool = False, quiet: Sequence[StoredVehicle] = ()) -> str:
    """/alerts; which delay applies: the i Remote polling, or CarData's reports for a `cardata` user, and what
    cannot be watched of the `quiet` cars (those that report rarely), said once for all of them."""
    lines = []
    for spec in ALERT_SPECS:
        words, minute = ALERT_TEXTS[spec.kind], spec.minute(prefs)
        line = words.line.format(value=spec.setting(prefs), time="" if minute is None else clock_time(minute))
        lines.append(f"{check(spec.on(prefs))} <b>{words.name}</b>: {line}")
    timing: list[str] = [ALERTS_TIMING_CARDATA if cardata else ALERTS_TIMING]
    if quiet:
        cars = joined((f"<b>{car_label(car)}</b>" for car in quiet), ", ")
        timing.append(ALERTS_QUIET_CARS.format(len(quiet), cars=cars))
    return ALERTS_ASK.format(lines=joined(lines), timing=joined(timing))


def _alert_setting(kind: AlertKind, prefs: AlertPrefs) -> str:
    """ ": 80 %", ": 50 % at 21:00"; nothing for an alert that is a switch alone."""
    spec = ALERT_SPEC[kind]
    minute, value = spec.minute(prefs), spec.setting(prefs)
    if value is None:
        return ""
    when = "" if minute is None else ALERT_AT.format(time=clock_time(minute))
    return f": {value} {ALERT_TEXTS[kind].unit}{when}"


def alert_switch(kind: AlertKind, prefs: AlertPrefs) -> str:
    """An alert's button: on or off, and its value."""
    return f"{check(ALERT_SPEC[kind].on(prefs))} {ALERT_TEXTS[kind].name}{_alert_setting(kind, prefs)}"


def alert_step(kind: AlertKind, sign: str) -> str:
    return f"{sign} {ALERT_SPEC[kind].step} {ALERT_TEXTS[kind].unit}"


def alert_changed(kind: AlertKind, prefs: AlertPrefs) -> str:
    """The toast after a press: the alert as it is now."""
    setting = _alert_setting(kind, prefs).removeprefix(": ")
    state = on_off(ALERT_SPEC[kind].on(prefs))
    return (
        f"{ALERT_TEXTS[kind].name}: {state}, {setting}" if setting else f"{ALERT_TEXTS[kind].name}: {state}"
    )


def alert_push(car: StoredVehicle, alert: Alert) -> str:
    words = ALERT_TEXTS[alert.kind]
    lines = [words.push.format(car=f"<b>{car_label(car)}</b>", soc=_percent(alert.soc), value=alert.value)]
    if alert.locked is False:  # set by an alert about the car's doors alone
        lines.append(ALERT_UNLOCKED)
    if alert.open_items:
        items = joined((OPEN_NAMES.get(item, escape(item)) for item in alert.open_items), ", ")
        lines.append(STATUS_OPEN.format(items=items))
    if words.soc_line:
        lines.append(f"🔋 {_percent(alert.soc)}")
    return joined(lines)
