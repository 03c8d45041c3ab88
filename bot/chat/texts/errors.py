"""What a refusal of a car service, or a BMW slow to answer, says."""

from __future__ import annotations

from bot.car_errors import CarServiceError, ErrorKind
from bot.cardata import errors as cd
from bot.chat import prefs
from bot.chat.i18n import Msg, tr

# A read BMW is slow to answer: the placeholder's second line, then the verdict
STILL_WAITING = Msg("{waiting}\n⏳ Still waiting for BMW…")
NOT_ANSWERING = Msg("⌛ BMW is not answering; try again in a few minutes.")


# What a refusal of a car service says, by its kind (bot/car_errors.py): the errors' own messages are English,
# for logs. `python -m bot i18n check` names a kind missing here (bot/chat/i18n.py).
ERROR_SENTENCES: dict[ErrorKind, Msg] = {
    ErrorKind.FAILED: Msg("The BMW service failed."),
    ErrorKind.UNAVAILABLE: Msg("The BMW service is not reachable right now; please try again later."),
    ErrorKind.BAD_RESPONSE: Msg("BMW answered with something this bot does not understand."),
    ErrorKind.UNKNOWN_CAR: Msg("BMW does not know this car on your account."),
    ErrorKind.LOGIN_REFUSED: Msg("BMW refused the username or password."),
    ErrorKind.API_KEY_REFUSED: Msg(
        "BMW refused this bot's API key; the bot's operator must fix its configuration."
    ),
    ErrorKind.SECURITY_ANSWER_NEEDED: Msg("BMW needs the answer to your security question for this command."),
    ErrorKind.SECURITY_ANSWER_WRONG: Msg("BMW refused the security answer."),
    ErrorKind.NOT_SUPPORTED: Msg("This car does not support that command."),
    ErrorKind.OTHER_REQUEST: Msg(
        "BMW now shows a later command of that kind, so this one's outcome is unknown."
    ),
    ErrorKind.COMMAND_TIMEOUT: Msg("The car did not confirm the command in time; it may still carry it out."),
    ErrorKind.RELINK: Msg("BMW CarData no longer accepts this link; please link the car again."),
    ErrorKind.BUDGET_SPENT: Msg("Today's BMW CarData calls are used up; more are possible from {when}."),
    ErrorKind.NOT_LINKED: Msg("No BMW CarData account is linked."),
    ErrorKind.CONTAINER_LIMIT: Msg(
        "Your BMW CarData account already has 10 data containers; delete one in the MyBMW portal,"
        " then link again."
    ),
    ErrorKind.UNKNOWN_CLIENT: Msg("BMW does not know this client id; check it in the MyBMW portal."),
    ErrorKind.CLIENT_NOT_SUBSCRIBED: Msg(
        "BMW refused the request; subscribe the client to CarData API and CarData Stream, then retry."
    ),
    ErrorKind.NOT_YOUR_CAR: Msg(
        "BMW CarData says this car is not yours to read: only the account of its primary user may read it."
    ),
    ErrorKind.KEYS_REFUSED: Msg(
        "BMW CarData refused the data this bot asks for; the bot's operator must update the bot."
    ),
}


def refusal(exc: CarServiceError) -> str:
    """A refusal of a car service in the user's language: its kind's sentence (a spent budget says from when,
    in the user's zone)."""
    sentence = ERROR_SENTENCES[exc.kind]
    if isinstance(exc, cd.BudgetSpent):
        return sentence.format(when=prefs.date_time(exc.retry_at))
    return tr(sentence)
