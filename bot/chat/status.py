"""/status, its Refresh and Location buttons, and choosing between several cars."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, MaybeInaccessibleMessage, Update
from telegram.constants import ChatAction
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.capabilities import Capability
from bot.car_errors import CarServiceError
from bot.car_status import CarStatus
from bot.cardata.errors import BudgetSpent
from bot.chat import keyboards, share, texts
from bot.chat.common import (
    Context,
    Reply,
    answer,
    answer_slowly,
    chat_of,
    command_and_button,
    edit,
    pressed_car,
    pressed_message,
    query_of,
    say,
    services,
    tells_refusals,
    user_data,
    user_id,
)
from bot.store import StoredVehicle

REFRESHING = "refreshing"  # user_data: the VINs whose CarData snapshot is on its way


def status_markup(update: Update, context: Context, car: StoredVehicle) -> InlineKeyboardMarkup:
    tg_id = user_id(update)
    svc = services(context)
    return keyboards.car_actions(
        svc.refs.ref(tg_id, car.vin),
        share.as_shown(svc.garage, tg_id, car),
        several_cars=len(svc.garage.all_cars(tg_id)) > 1,
    )


async def show_status(
    update: Update, context: Context, car: StoredVehicle, message: MaybeInaccessibleMessage | None = None
) -> None:
    """Fetch and show the status, editing `message` in place when given (Refresh)."""
    markup = status_markup(update, context, car)
    if Capability.STATUS_STREAM in car.capabilities:
        await show_streamed(update, context, car, markup, message)
        return

    async def render(status: CarStatus) -> Reply:
        return Reply(texts.status(car, status), markup)

    await answer_slowly(
        update,
        car,
        lambda: services(context).garage.status(user_id(update), car.vin),
        render,
        waiting=texts.UPDATING.format(car=texts.car_label(car)),
        markup=markup,
        message=message,
    )


async def status_or_refresh(update: Update, context: Context, car: StoredVehicle) -> None:
    """/status shows a new status; Refresh edits the pressed one (a status, or a charge push) in place."""
    query = update.callback_query
    await show_status(update, context, car, pressed_message(query) if query else None)


async def show_streamed(
    update: Update,
    context: Context,
    car: StoredVehicle,
    markup: InlineKeyboardMarkup,
    message: MaybeInaccessibleMessage | None,
) -> None:
    """A streamed car's last known status, at once and without a call to BMW; Refresh (`message`) takes a
    snapshot from BMW first (`refresh_streamed`)."""
    garage = services(context).garage
    tg_id = user_id(update)
    if message is None:
        text = texts.status(car, await garage.status(tg_id, car.vin))
        if (block := garage.stream_block(tg_id)) is not None:
            text += f"\n{texts.CARDATA_STREAM_BLOCKED_STATUS[block]}"
        if (spent := garage.calls_spent(tg_id)) is not None:
            text += texts.no_calls_left(spent.retry_at, spent.co_owner_calls)
        await say(update, text, markup)
        return
    refreshing: set[str] = user_data(context).setdefault(REFRESHING, set())
    if car.vin in refreshing:  # a snapshot is on its way, into this message: one call of the budget is enough
        return
    refreshing.add(car.vin)
    # In a task of its own: BMW may take up to GIVE_UP_SECONDS, and the user's next update must not wait.
    task = context.application.create_task(
        refresh_streamed(update, context, car, markup, message), update=update
    )
    task.add_done_callback(lambda _: refreshing.discard(car.vin))


async def refresh_streamed(
    update: Update,
    context: Context,
    car: StoredVehicle,
    markup: InlineKeyboardMarkup,
    message: MaybeInaccessibleMessage,
) -> None:
    """A snapshot from BMW within the day's call budget, shown in `message` with how many calls are left when
    few are; waited for like every BMW read of a waiting user (`answer_slowly`: a verdict within its time)."""
    garage = services(context).garage
    tg_id = user_id(update)

    async def snapshot() -> tuple[CarStatus, str]:
        try:
            refreshed = await garage.refresh(tg_id, car.vin)
        except CarServiceError as exc:
            # What the car last sent is still worth showing; why no fresh snapshot came is said under it.
            co_owners = texts.co_owners_used(exc.co_owner_calls) if isinstance(exc, BudgetSpent) else ""
            return await garage.status(
                tg_id, car.vin
            ), f"\n\n{texts.snapshot_failed(texts.refusal(exc))}{co_owners}"
        left = "" if refreshed.calls_left is None else texts.calls_left(refreshed.calls_left)
        return refreshed.status, left

    async def render(shown: tuple[CarStatus, str]) -> Reply:
        status, note = shown
        return Reply(texts.status(car, status) + note, markup)

    await answer_slowly(
        update,
        car,
        snapshot,
        render,
        waiting=texts.UPDATING.format(car=texts.car_label(car)),
        markup=markup,
        message=message,
    )


async def location_of(update: Update, context: Context, car: StoredVehicle) -> None:
    """Send the car's position as a location pin (or say that it is not shared)."""

    async def render(status: CarStatus) -> Reply | None:
        position = status.position
        if position is None or not position.usable:
            return Reply(texts.no_location(car, position))
        assert position.lat is not None and position.lon is not None  # usable
        await chat_of(update).send_location(
            latitude=position.lat,
            longitude=position.lon,
            reply_markup=keyboards.position_copy(position.lat, position.lon),
        )
        return None

    await answer_slowly(
        update,
        car,
        lambda: services(context).garage.status(user_id(update), car.vin),
        render,
        waiting=texts.LOCATING.format(car=texts.car_label(car)),
        action=ChatAction.FIND_LOCATION,
    )


@tells_refusals
async def cars_command(update: Update, context: Context) -> None:
    svc = services(context)
    cars = svc.garage.cars(user_id(update))
    await say(update, texts.PICK_CAR, keyboards.car_picker(svc.refs, user_id(update), cars))


async def pick(update: Update, context: Context) -> None:
    await answer(query_of(update))
    await cars_command(update, context)


async def select(update: Update, context: Context) -> None:
    query = query_of(update)
    car = await pressed_car(update, context)
    if car is None:
        return
    services(context).garage.select(user_id(update), car.vin)
    await answer(query)
    await edit(pressed_message(query), texts.CAR_SELECTED.format(car=texts.car_label(car)))
    await show_status(update, context, car)


def handlers() -> list:
    return [
        *command_and_button(status_or_refresh, command="status", button=keyboards.REFRESH, toast=texts.BUSY),
        CommandHandler("cars", cars_command),
        *command_and_button(location_of, button=keyboards.LOCATION),
        CallbackQueryHandler(pick, pattern=f"^{keyboards.PICK}:"),
        CallbackQueryHandler(select, pattern=f"^{keyboards.SELECT}:"),
    ]
