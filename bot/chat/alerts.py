"""/alerts: one message to switch each alert on or off and set its value (per user, effective at the next
reading of a car); and the words and buttons of an alert push (decided in bot/alerts.py, sent by the watcher's
pusher in bot/chat/notify.py)."""

from __future__ import annotations

from dataclasses import replace

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.alerts import Alert, AlertKind, AlertPrefs
from bot.capabilities import Capability
from bot.chat import keyboards, texts
from bot.chat.common import Context, answer, edit, pressed_message, query_of, say, services, user_id
from bot.garage import Garage
from bot.store import StoredVehicle

# Per alert: the prefs fields of its switch and its value, the value's step and bounds.
SETTINGS: dict[AlertKind, tuple[str, str, int, int, int]] = {
    AlertKind.LEVEL: ("level_on", "level_percent", 5, 10, 100),
    AlertKind.STALL: ("stall_on", "stall_minutes", 5, 5, 120),
    AlertKind.PLUG: ("plug_on", "plug_percent", 5, 10, 95),
    AlertKind.OPEN: ("open_on", "open_minutes", 5, 5, 120),
}
TIME_STEP_MINUTES = 30
DAY_MINUTES = 24 * 60


def menu(prefs: AlertPrefs) -> InlineKeyboardMarkup:
    rows: list[list[tuple[str, str, str]]] = []
    for kind, (_, _, step, _, _) in SETTINGS.items():
        rows.append([(texts.alert_switch(kind, prefs), kind, keyboards.ALERT_SWITCH)])
        values: list[tuple[str, str, str]] = [
            (texts.alert_step(kind, "➖", step), kind, keyboards.ALERT_DOWN),
            (texts.alert_step(kind, "➕", step), kind, keyboards.ALERT_UP),
        ]
        if kind is AlertKind.PLUG:
            values += [
                (
                    texts.ALERT_TIME_BUTTON.format(sign="➖", minutes=TIME_STEP_MINUTES),
                    kind,
                    keyboards.ALERT_EARLIER,
                ),
                (
                    texts.ALERT_TIME_BUTTON.format(sign="➕", minutes=TIME_STEP_MINUTES),
                    kind,
                    keyboards.ALERT_LATER,
                ),
            ]
        rows.append(values)
    return keyboards.alerts(rows)


def changed(prefs: AlertPrefs, kind: AlertKind, op: str) -> AlertPrefs | None:
    """The prefs after pressing `op` of `kind`'s buttons; None for an op that is none of ours."""
    switch, field, step, low, high = SETTINGS[kind]
    if op == keyboards.ALERT_SWITCH:
        return replace(prefs, **{switch: not getattr(prefs, switch)})
    if op in (keyboards.ALERT_UP, keyboards.ALERT_DOWN):
        value = getattr(prefs, field) + (step if op == keyboards.ALERT_UP else -step)
        return replace(prefs, **{field: max(low, min(high, value))})
    if kind is AlertKind.PLUG and op in (keyboards.ALERT_LATER, keyboards.ALERT_EARLIER):
        shift = TIME_STEP_MINUTES if op == keyboards.ALERT_LATER else -TIME_STEP_MINUTES
        return replace(prefs, plug_minute=(prefs.plug_minute + shift) % DAY_MINUTES)
    return None


async def menu_text(garage: Garage, tg_id: int, prefs: AlertPrefs) -> str:
    """/alerts for this user: with the delay of their backend and what their quiet CarData cars cannot
    show (their status is what the stream last said: no call to BMW)."""
    cars = garage.all_cars(tg_id)
    # No CarData backend configured (any more): no stream to say how its cars report.
    streamed = [car for car in cars if Capability.STATUS_STREAM in car.capabilities] if garage.cardata else []
    quiet = [car for car in streamed if (await garage.status(tg_id, car.vin)).reports_rarely]
    return texts.alerts_menu(prefs, cardata=any(keyboards.read_only(car) for car in cars), quiet=quiet)


async def alerts_command(update: Update, context: Context) -> None:
    garage, tg_id = services(context).garage, user_id(update)
    prefs = garage.alert_prefs(tg_id)
    await say(update, await menu_text(garage, tg_id, prefs), menu(prefs))


async def change(update: Update, context: Context) -> None:
    """One press on the /alerts message: changes the pressing user's own alerts, whoever's message it is."""
    query = query_of(update)
    kind_name, _, op = keyboards.parse(query.data)[1].partition(keyboards.SEP)
    garage = services(context).garage
    tg_id = user_id(update)
    prefs = garage.alert_prefs(tg_id)
    new = changed(prefs, AlertKind(kind_name), op) if kind_name in SETTINGS else None
    if new is None:
        await answer(query, texts.STALE_BUTTON)
        return
    kind = AlertKind(kind_name)
    if new != prefs:
        garage.save_alert_prefs(tg_id, new)
    await answer(query, texts.alert_changed(kind, new))
    await edit(pressed_message(query), await menu_text(garage, tg_id, new), menu(new))


def push(car: StoredVehicle, alert: Alert, ref: str) -> tuple[str, InlineKeyboardMarkup]:
    """An alert's message and its buttons (Lock for a car left unlocked that can lock)."""
    lock = alert.kind is AlertKind.OPEN and alert.locked is False
    return texts.alert_push(car, alert), keyboards.alert_push(ref, car, lock=lock)


def handlers() -> list:
    return [
        CommandHandler("alerts", alerts_command),
        CallbackQueryHandler(change, pattern=f"^{keyboards.ALERTS}:"),
    ]
