"""/alerts: one message to switch each alert on or off and set its value (per user, effective at the next
reading of a car); and the words and buttons of an alert push (decided in bot/alerts.py, sent by the watcher's
pusher in bot/chat/notify.py)."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.alerts import ALERT_SPEC, ALERT_SPECS, Alert, AlertKind, AlertPrefs
from bot.capabilities import Capability
from bot.chat import keyboards, texts
from bot.chat.common import Context, answer, edit, pressed_message, query_of, say, services, user_id
from bot.garage import Garage
from bot.store import StoredVehicle

TIME_STEP_MINUTES = 30  # ➖ ➕ of an alert at a time of day


def menu(prefs: AlertPrefs) -> InlineKeyboardMarkup:
    """Per alert kind (`ALERT_SPECS`): its switch, its ➖ ➕ (unless it is a switch alone), and for one at a
    time of day its 🕘 ➖ ➕ on a row of their own, as four buttons in a row are cut at a phone's width."""
    rows: list[list[tuple[str, str, str]]] = []
    for spec in ALERT_SPECS:
        kind = spec.kind
        rows.append([(texts.alert_switch(kind, prefs), kind, keyboards.ALERT_SWITCH)])
        if spec.value is not None:
            rows.append(
                [
                    (texts.alert_step(kind, "➖"), kind, keyboards.ALERT_DOWN),
                    (texts.alert_step(kind, "➕"), kind, keyboards.ALERT_UP),
                ]
            )
        if spec.clock is not None:
            rows.append(
                [
                    (texts.ALERT_TIME_BUTTON.format(sign=sign, minutes=TIME_STEP_MINUTES), kind, op)
                    for sign, op in (("➖", keyboards.ALERT_EARLIER), ("➕", keyboards.ALERT_LATER))
                ]
            )
    return keyboards.alerts(rows)


def changed(prefs: AlertPrefs, kind: AlertKind, op: str) -> AlertPrefs | None:
    """The prefs after pressing `op` of `kind`'s buttons; None for an op that is none of ours."""
    spec = ALERT_SPEC[kind]
    if op == keyboards.ALERT_SWITCH:
        return spec.switched(prefs)
    if op in (keyboards.ALERT_UP, keyboards.ALERT_DOWN):
        return spec.stepped(prefs, 1 if op == keyboards.ALERT_UP else -1)
    if spec.clock is not None and op in (keyboards.ALERT_LATER, keyboards.ALERT_EARLIER):
        return spec.shifted(prefs, TIME_STEP_MINUTES if op == keyboards.ALERT_LATER else -TIME_STEP_MINUTES)
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
    new = changed(prefs, AlertKind(kind_name), op) if kind_name in ALERT_SPEC else None
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
    return texts.alert_push(car, alert), keyboards.alert_push(ref, car, lock=alert.locked is False)


def handlers() -> list:
    return [
        CommandHandler("alerts", alerts_command),
        CallbackQueryHandler(change, pattern=f"^{keyboards.ALERTS}:"),
    ]
