"""/schedule: show the charging profile and edit it with buttons; Save sends it with CHARGING_CONTROL.

Presses edit a draft kept per user (in user_data, one per car) and the schedule message is edited in place;
only Save reaches the car. A press is honoured only for the pressing user's own car and only on the message
of that car's open draft: a press on an older schedule, after Save or Discard, or by anyone else gets the
neutral "no longer valid" answer and changes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from telegram import Message, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
)

from bot.bmw.models import ChargingProfile, ExecutionState, ServiceType
from bot.bmw.models.charging_profile import WEEKDAYS, WindowEdge
from bot.chat import keyboards, prefs, texts
from bot.chat.common import (
    ASKING,
    Context,
    Reply,
    answer,
    answer_slowly,
    chosen_car,
    edit,
    message_of,
    pressed_car,
    prompt,
    query_of,
    say,
    services,
    typed_answer,
    user_data,
    user_id,
)
from bot.chat.remote import run_service
from bot.chat.settings import locale_handler
from bot.store import StoredVehicle

FLOW = "schedule_time"
ASKING_KEY = "schedule_asking"  # user_data: (VIN, target) of the time being typed
TIME_WAIT_SECONDS = 300.0
NAVIGATION = {keyboards.S_MAIN, keyboards.S_TIMER, keyboards.S_WINDOW}


@dataclass
class Draft:
    """One car's profile being edited (kept under its VIN): the car's, the user's edit, where it shows."""

    ref: str
    message: Message
    original: ChargingProfile
    profile: ChargingProfile
    focus: str | None = None  # a timer key, "window", or None for the overview
    # Serialises edits of one draft: concurrent presses must reach the message in the order they changed it.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _drafts(context: Context) -> dict[str, Draft]:
    return user_data(context).setdefault("schedule", {})


# Pure edits of a profile ------------------------------------------------------------------------------------


EDGES: dict[str, WindowEdge] = {keyboards.WINDOW_START: "start", keyboards.WINDOW_END: "end"}


def _timer_key(profile: ChargingProfile, index: str) -> str:
    """The key of the timer at 1-based `index`; ValueError/IndexError for anything else (a forged press)."""
    return profile.timer_at(int(index))


def set_time(profile: ChargingProfile, target: str, value: str) -> ChargingProfile:
    """A typed time for a timer (`target` its 1-based index) or the window's start/end."""
    if target in EDGES:
        return profile.set_window_time(EDGES[target], value)
    return profile.with_timer(_timer_key(profile, target), departure_time=value)


def apply(profile: ChargingProfile, op: str, params: list[str]) -> ChargingProfile:
    """The profile after one button; LookupError/ValueError for a press that does not fit this profile."""
    if op == keyboards.S_TOGGLE:
        return profile.toggle_timer(_timer_key(profile, params[0]))
    if op == keyboards.S_SHIFT:
        return profile.shift_departure(_timer_key(profile, params[0]), int(params[1]))
    if op == keyboards.S_DAY:
        return profile.toggle_weekday(_timer_key(profile, params[0]), WEEKDAYS[int(params[1])])
    if op == keyboards.S_WINDOW_TOGGLE:
        return profile.toggle_window()
    if op == keyboards.S_WINDOW_SHIFT:
        return profile.shift_window(EDGES[params[0]], int(params[1]))
    if op == keyboards.S_MODE:
        return profile.toggle_mode()
    if op == keyboards.S_CLIMATE:
        return profile.toggle_climatization()
    raise ValueError(op)


def _focus(profile: ChargingProfile, op: str, params: list[str]) -> str | None:
    if op == keyboards.S_TIMER:
        return _timer_key(profile, params[0])
    if op == keyboards.S_WINDOW:
        if profile.window is None:
            raise LookupError("no window")
        return "window"
    return None


# Showing -------------------------------------------------------------------------------------------------


async def _show(car: StoredVehicle, draft: Draft) -> None:
    note = texts.SCHEDULE_UNSAVED if draft.profile != draft.original else None
    await edit(
        draft.message,
        texts.schedule(car, draft.profile, focus=draft.focus, note=note),
        keyboards.schedule(draft.ref, draft.profile, draft.focus),
    )


async def schedule_command(update: Update, context: Context) -> None:
    needs = texts.REMOTE_ACTION[ServiceType.CHARGING_CONTROL].capability
    car = await chosen_car(update, context, needs=needs, unsupported=texts.SCHEDULE_UNSUPPORTED)
    if car is None:
        return
    tg_id = user_id(update)
    if car.tg_id != tg_id:  # a car shared with the user: its schedule is the owner's (garage.execute agrees)
        await say(update, texts.SHARE_OWNER_ONLY)
        return
    ref = services(context).refs.ref(tg_id, car.vin)
    read: ChargingProfile | None = None

    async def render(profile: ChargingProfile | None) -> Reply:
        nonlocal read
        read = profile
        if profile is None:
            return Reply(texts.SCHEDULE_NONE.format(car=texts.car_label(car)))
        return Reply(texts.schedule(car, profile), keyboards.schedule(ref, profile, None))

    message = await answer_slowly(
        update,
        car,
        lambda: services(context).garage.charging_profile(tg_id, car.vin),
        render,
        waiting=texts.SCHEDULE_LOADING.format(car=texts.car_label(car)),
    )
    if message is not None and read is not None:
        # A new schedule replaces any open draft of this car: the older message's buttons go stale.
        _drafts(context)[car.vin] = Draft(ref, message, read, read)


async def _pressed_draft(
    update: Update, context: Context
) -> tuple[StoredVehicle, Draft, str, list[str]] | None:
    """The pressing user's car and its open draft, if this press is on that draft's message."""
    query = query_of(update)
    ref, op, params = keyboards.parse_schedule(keyboards.parse(query.data)[1])
    car = await pressed_car(update, context, ref)
    if car is None:
        return None
    draft = _drafts(context).get(car.vin)
    here = query.message
    if (
        draft is None
        or here is None
        or (here.chat.id, here.message_id) != (draft.message.chat.id, draft.message.message_id)
    ):
        await answer(query, texts.STALE_BUTTON)
        return None
    return car, draft, op, params


async def press(update: Update, context: Context) -> None:
    pressed = await _pressed_draft(update, context)
    if pressed is None:
        return
    car, draft, op, params = pressed
    query = query_of(update)
    if op == keyboards.S_SAVE:
        await _save(update, context, car, draft)
        return
    if op == keyboards.S_DISCARD:
        _drafts(context).pop(car.vin, None)
        await answer(query)
        await edit(draft.message, texts.schedule(car, draft.original, note=texts.SCHEDULE_DISCARDED))
        return
    async with draft.lock:
        try:
            if op in NAVIGATION:
                draft.focus = _focus(draft.profile, op, params)
            else:
                draft.profile = apply(draft.profile, op, params)
        except (LookupError, ValueError):
            await answer(query, texts.STALE_BUTTON)
            return
        await answer(query)
        await _show(car, draft)


async def _save(update: Update, context: Context, car: StoredVehicle, draft: Draft) -> None:
    query = query_of(update)
    async with draft.lock:
        if draft.profile == draft.original:
            await answer(query, texts.SCHEDULE_UNCHANGED)
            return
        _drafts(context).pop(car.vin, None)  # taken: a second Save press finds nothing to send twice
    await answer(query, texts.SERVICE_NAMES[ServiceType.CHARGING_CONTROL])
    await edit(draft.message, texts.schedule(car, draft.profile, note=texts.SCHEDULE_SENDING))
    # The car takes its time: its own task, so the user's next update need not wait (bot/updates.py).
    context.application.create_task(_send(update, context, car, draft), update=update)


async def _send(update: Update, context: Context, car: StoredVehicle, draft: Draft) -> None:
    result = await run_service(update, context, car, ServiceType.CHARGING_CONTROL, profile=draft.profile)
    if result is not None and result.status == ExecutionState.EXECUTED:
        await edit(draft.message, texts.schedule(car, draft.profile, note=texts.SCHEDULE_SAVED))
        return
    # Not taken: the edits come back so Save can be tried again (unless a newer /schedule replaced them).
    if _drafts(context).setdefault(car.vin, draft) is draft:
        await _show(car, draft)


# Typing a time ----------------------------------------------------------------------------------------------


def _what(profile: ChargingProfile, target: str) -> str:
    if target == keyboards.WINDOW_START:
        return texts.WINDOW_START
    if target == keyboards.WINDOW_END:
        return texts.WINDOW_END
    return texts.DEPARTURE_OF.format(timer=texts.timer_name(_timer_key(profile, target)))


async def ask_time(update: Update, context: Context) -> int:
    pressed = await _pressed_draft(update, context)
    if pressed is None:
        return ConversationHandler.END
    car, draft, _op, params = pressed
    query = query_of(update)
    try:
        target = params[0]
        what = _what(draft.profile, target)
        if target in EDGES:
            draft.profile.window_time(EDGES[target])
    except (LookupError, ValueError):
        await answer(query, texts.STALE_BUTTON)
        return ConversationHandler.END
    await answer(query)
    user_data(context)[ASKING_KEY] = (car.vin, target)
    prompt(context, FLOW)
    await say(update, texts.SCHEDULE_ASK_TIME.format(what=what))
    return ASKING


async def receive_time(update: Update, context: Context) -> int:
    vin, target = user_data(context).get(ASKING_KEY, (None, ""))
    draft = _drafts(context).get(vin) if vin else None
    car = services(context).garage.find_car(user_id(update), vin) if vin else None
    if draft is None or car is None:
        user_data(context).pop(ASKING_KEY, None)
        await say(update, texts.SCHEDULE_CLOSED)
        return ConversationHandler.END
    value = prefs.parse_time(message_of(update).text or "")
    if value is None:
        await say(update, texts.SCHEDULE_BAD_TIME)
        return ASKING
    user_data(context).pop(ASKING_KEY, None)
    async with draft.lock:
        draft.profile = set_time(draft.profile, target, value)
        await _show(car, draft)
    await say(update, texts.SCHEDULE_TIME_SET.format(what=_what(draft.profile, target), time=value))
    return ConversationHandler.END


def handlers() -> list:
    pattern = f"^{keyboards.SCHEDULE}:"
    typed_time = typed_answer(
        FLOW,
        ask=CallbackQueryHandler(ask_time, pattern=f"{pattern}[^:]*:{keyboards.S_ASK}:"),
        receive=receive_time,
        press=press,
        pattern=pattern,
        waiting=ASKING_KEY,
        timeout_text=texts.SCHEDULE_TIME_TIMEOUT,
        seconds=TIME_WAIT_SECONDS,
        before_timeout=locale_handler(),
    )
    return [
        typed_time,
        CommandHandler("schedule", schedule_command),
        CallbackQueryHandler(press, pattern=pattern),
    ]
