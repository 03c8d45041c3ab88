"""The errors every caller of the CarData client sees.

Messages are English, for logs; they never carry a token, client id or a server's free text (which may echo
what was sent). A user reads the sentence the chat layer keeps for each class, in their language
(`ERROR_SENTENCES` in bot/chat/texts.py; `python -m bot i18n check` names a class without one): a new
refusal users should tell apart is a new class here, not a new message.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar


class CarDataError(Exception):
    """Base of all CarData errors; `str(error)` is a sentence safe to log."""

    default_message: ClassVar[str] = "BMW CarData failed."

    def __init__(
        self, message: str | None = None, *, status_code: int | None = None, error_id: str | None = None
    ) -> None:
        self.message = message or self.default_message
        self.status_code = status_code
        # BMW's `exveErrorId` (e.g. "CU-429"), when the answer carried one.
        self.error_id = error_id
        super().__init__(self.message)


class RelinkNeeded(CarDataError):
    """The refresh token was refused (expired after two weeks, or revoked): the owner must link again."""

    default_message = "BMW CarData no longer accepts this link; please link the car again."


class BudgetSpent(CarDataError):
    """Today's calls are spent (the bot's budget, or BMW's CU-429); `retry_at` says when calls work again,
    `co_owner_calls` how many calls the account's co-owners used today when theirs are why (else 0)."""

    default_message = "Today's BMW CarData calls are used up."

    def __init__(
        self,
        retry_at: datetime,
        *,
        co_owner_calls: int = 0,
        status_code: int | None = None,
        error_id: str | None = None,
    ) -> None:
        super().__init__(
            f"Today's BMW CarData calls are used up; more are possible from {retry_at:%Y-%m-%d %H:%M} UTC.",
            status_code=status_code,
            error_id=error_id,
        )
        self.retry_at = retry_at
        self.co_owner_calls = co_owner_calls


class NotLinked(CarDataError):
    """No CarData link (or no container yet) is stored for this owner."""

    default_message = "No BMW CarData account is linked."


class ContainerLimit(CarDataError):
    """The owner already has BMW's maximum of 10 containers and none of them is the bot's."""

    default_message = (
        "Your BMW CarData account already has 10 data containers; delete one in the MyBMW portal,"
        " then link again."
    )


class UnknownClient(CarDataError):
    """BMW does not know the client id (`invalid_client`)."""

    default_message = "BMW does not know this client id; check it in the MyBMW portal."


class ClientNotSubscribed(CarDataError):
    """BMW refused the device code request (`invalid_request`): the client lacks its API subscriptions."""

    default_message = (
        "BMW refused the request; subscribe the client to CarData API and CarData Stream, then retry."
    )


class VehicleNotFound(CarDataError):
    default_message = "BMW CarData does not know this car on your account."


class NotYourCar(CarDataError):
    """BMW's CU-104: the account may not read this car (not mapped to it, or only as a SECONDARY user)."""

    default_message = (
        "BMW CarData says this car is not yours to read: only the account of its primary user may read it."
    )


class KeysRefused(CarDataError):
    """BMW's CU-402: the container asked for a data key BMW does not know (its catalogue changed)."""

    default_message = (
        "BMW CarData refused the data this bot asks for; the bot's operator must update the bot."
    )


class CarDataUnavailable(CarDataError):
    """Network errors, time-outs and 5xx answers."""

    default_message = "BMW CarData is not reachable right now; please try again later."


class BadResponse(CarDataError):
    """Malformed JSON, or a body not of the documented shape."""

    default_message = "BMW CarData answered with something this bot does not understand."
