"""Charge pushes and /notify."""

from __future__ import annotations

from bot.car_status import ChargeNotice
from bot.chat import prefs
from bot.chat.i18n import Msg
from bot.chat.texts.formatting import _duration, _km, car_label, check, joined
from bot.chat.texts.schedule import SWITCH_BUTTON
from bot.store import StoredVehicle

# Charge pushes and /notify
NOTIFY_ASK = Msg("🔔 Which messages should I send you about charging? Tap one to switch it on or off.")
NOTIFY_LABELS = {
    "finished": Msg("Charge finished"),
    "started": Msg("Charging started"),
    "interrupted": Msg("Charging interrupted"),
}
NOTIFY_SWITCHED = "{label}: {state}"
CHARGE_HEADLINES = {
    "started": Msg("⚡ {car} started charging."),
    "full": Msg("🔋 {car} has finished charging."),
    "early": Msg("🔌 {car} stopped charging before it was full."),
    "error": Msg("⚠️ {car} stopped charging with an error."),
    "interrupted": Msg("⚠️ Charging of {car} was interrupted."),
}
PUSH_CHARGE = Msg("🔋 {soc} · {range} electric")
PUSH_CHARGE_FROM = Msg("🔋 {start} % → {soc} · {range} electric")
PUSH_TO_FULL = Msg("⏳ about {duration} to full")
PUSH_CHARGED_FOR = Msg("⏱ charged for {duration}")
PUSH_END_REASON = Msg("ℹ️ {reason}")
PUSH_READ_LATE = Msg("📡 BMW had not reported it; read from the car at {time}.")
# Why a charge ended, in the i Remote API's words, an i3's on CarData (hvpmFinishReason) and SP25 cars'
# (reasonChargingEnd; docs/cardata.md).
GOAL_REACHED = frozenset({"CHARGING_GOAL_REACHED", "HV_BATTERY_FULLY_CHARGED"})
_GOAL, _UNPLUGGED = Msg("charge goal reached"), Msg("the cable was unplugged")
_BY_DRIVER = Msg("stopped by the driver")
END_REASONS = {
    **dict.fromkeys(GOAL_REACHED, _GOAL),
    **dict.fromkeys(
        ("CONNECTOR_REMOVAL", "CONNECTOR_REMOVED", "CUSTOMER_INTERACTION_PLUG_REMOVED"), _UNPLUGGED
    ),
    **dict.fromkeys(("END_REQUESTED_BY_DRIVER", "CUSTOMER_INTERACTION_STOP_CHARGING"), _BY_DRIVER),
}


def notify_button(name: str, on: bool) -> str:
    return SWITCH_BUTTON.format(check=check(on), name=NOTIFY_LABELS[name])


def charge_push(car: StoredVehicle, notice: ChargeNotice) -> str:
    """A charge push, from either backend: the headline of its kind, the numbers, why it ended."""
    lines = [CHARGE_HEADLINES[notice.kind].format(car=f"<b>{car_label(car)}</b>")]
    status, soc_at_start, charged_seconds = notice.status, notice.soc_at_start, notice.charged_seconds
    soc = "–" if status.soc is None else f"{status.soc:.0f} %"
    electric = _km(status.electric_range_km)
    if soc_at_start is not None and notice.ended:
        lines.append(PUSH_CHARGE_FROM.format(start=f"{soc_at_start:.0f}", soc=soc, range=electric))
    else:
        lines.append(PUSH_CHARGE.format(soc=soc, range=electric))
    if not notice.ended:
        if status.minutes_left is not None:
            lines.append(PUSH_TO_FULL.format(duration=_duration(status.minutes_left)))
    else:
        if charged_seconds is not None:  # not known of a charge that ended unseen (a quiet car's)
            lines.append(PUSH_CHARGED_FOR.format(duration=_duration(round(charged_seconds / 60))))
        reason = status.end_reason
        # A car that stops short without a reason of its own still reports the last charge's: not this one's.
        stale = reason in GOAL_REACHED and notice.kind != "full"
        if reason in END_REASONS and not stale:
            lines.append(PUSH_END_REASON.format(reason=END_REASONS[reason]))
        if notice.read_at is not None:
            lines.append(PUSH_READ_LATE.format(time=prefs.clock(notice.read_at)))
    return joined(lines)
