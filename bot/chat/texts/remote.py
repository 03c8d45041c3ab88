"""Remote commands: their progress, results, the unlock confirmation and the security answer."""

from __future__ import annotations

from html import escape

from bot.bmw.models import (
    ExecutionState,
    ServiceType,
)
from bot.chat.i18n import Msg
from bot.chat.texts.formatting import car_label
from bot.chat.texts.remote_actions import REMOTE_ACTION, SERVICE_NAMES
from bot.store import StoredVehicle

# Remote commands
PROGRESS: dict[str, str] = {
    "SENDING": Msg("sending to BMW…"),
    ExecutionState.INITIATED: Msg("BMW has the request…"),
    ExecutionState.PENDING: Msg("waking the car…"),
    ExecutionState.DELIVERED: Msg("the car has it…"),
}
PROGRESS_WAITING = Msg("waiting for the car…")
PROGRESS_LINE = "{name} — {car}: {step}"
SERVICE_NOT_EXECUTED = Msg("⚠️ {name}: {car} did not carry it out.")
SERVICE_TIMED_OUT = Msg("⌛ {name}: {car} did not answer in time. It may still carry it out; check /status.")
SERVICE_INTERRUPTED = Msg(
    "⏹ {name}: the bot is restarting. The command reached BMW, but I can't wait for {car}'s answer; "
    "check /status in a minute."
)
SERVICE_OUTCOME_UNKNOWN = Msg(
    "❔ {name}: the bot restarted while {car} was on it, and BMW no longer tells how it ended. "
    "Check /status before you send it again."
)
SERVICE_UNSUPPORTED = Msg("{car} does not support that.")
SERVICE_UNSUPPORTED_SOME_CAR = Msg("The car does not support that.")
COMMAND_IN_PROGRESS = Msg("{car} is still busy with the previous command; please wait for it.")
COMMAND_IN_PROGRESS_SOME_CAR = Msg("The car is still busy with the previous command; please wait for it.")
TOO_MANY_COMMANDS = Msg("That's a lot of commands; please wait {seconds} s before the next one.")
UNLOCK_ASK = Msg("Unlock {car}? Make sure you can see it.")
UNLOCK_EXPIRED = Msg("This unlock confirmation has expired; ask again with /unlock.")
UNLOCK_CANCELLED = Msg("OK, {car} stays locked.")
UNLOCK_CANCELLED_SOME_CAR = Msg("OK, the car stays locked.")
YES_UNLOCK = Msg("🔓 Yes, unlock")
ANSWER_ASK = Msg(
    "BMW wants the answer to your account's security question to unlock {car}. Send it now "
    "(I delete your message right away), or /cancel."
)
ANSWER_WRONG = Msg("BMW did not accept that security answer; it was not stored. Try /unlock again.")
ANSWER_TOO_LONG = Msg(
    "That is longer than any security answer BMW takes (at most {limit} characters); it was not used. "
    "Try /unlock again."
)
ANSWER_REMEMBER = Msg("Remember the security answer (encrypted) so I don't have to ask next time?")
YES_REMEMBER = Msg("Yes, remember")
ANSWER_REMEMBERED = Msg("Saved, encrypted. /unlink removes it.")
ANSWER_NOT_REMEMBERED = Msg("OK, I won't keep it.")
ANSWER_TIMEOUT = Msg("I didn't get the security answer in time; ask again with /unlock.")

BMW_TROUBLE = "⚠️ {reason}"


def command_in_progress(car: StoredVehicle | None) -> str:
    return COMMAND_IN_PROGRESS.format(car=car_label(car)) if car else COMMAND_IN_PROGRESS_SOME_CAR


def unsupported(car: StoredVehicle | None) -> str:
    return SERVICE_UNSUPPORTED.format(car=car_label(car)) if car else SERVICE_UNSUPPORTED_SOME_CAR


def unlock_cancelled(car: StoredVehicle | None) -> str:
    """`car` None: unlinked since it was asked."""
    return UNLOCK_CANCELLED.format(car=car_label(car)) if car else UNLOCK_CANCELLED_SOME_CAR


def bmw_trouble(reason: str) -> str:
    return BMW_TROUBLE.format(reason=escape(reason))


def progress(service: ServiceType, car: StoredVehicle, state: str | None) -> str:
    step = PROGRESS.get(state or "", PROGRESS_WAITING)
    return PROGRESS_LINE.format(name=SERVICE_NAMES[service], car=car_label(car), step=step)


def outcome(service: ServiceType, car: StoredVehicle, state: str | None) -> str:
    label = car_label(car)
    if state == ExecutionState.EXECUTED:
        return REMOTE_ACTION[service].done.format(car=label)
    if state == ExecutionState.NOT_EXECUTED:
        return SERVICE_NOT_EXECUTED.format(name=SERVICE_NAMES[service], car=label)
    return SERVICE_TIMED_OUT.format(name=SERVICE_NAMES[service], car=label)
