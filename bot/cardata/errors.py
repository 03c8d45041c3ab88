"""The errors every caller of the CarData client sees.

Each is a `CarServiceError` (bot/car_errors.py): its message is English, for logs, and never carries a
token, client id or a server's free text (which may echo what was sent). A user reads the sentence the chat
keeps for its kind, in their language: a new refusal users should tell apart is a new class here with a new
`ErrorKind`, not a new message.
"""

from __future__ import annotations

from datetime import datetime

from bot.car_errors import CarServiceError, ErrorKind


class CarDataError(CarServiceError):
    """Base of all CarData errors."""

    def __init__(
        self, message: str | None = None, *, status_code: int | None = None, error_id: str | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        # BMW's `exveErrorId` (e.g. "CU-429"), when the answer carried one.
        self.error_id = error_id


class RelinkNeeded(CarDataError):
    """The refresh token was refused (expired after two weeks, or revoked): the owner must link again."""

    kind = ErrorKind.RELINK


class BudgetSpent(CarDataError):
    """Today's calls are spent (the bot's budget, or BMW's CU-429); `retry_at` says when calls work again,
    `co_owner_calls` how many calls the account's co-owners used today when theirs are why (else 0)."""

    kind = ErrorKind.BUDGET_SPENT

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

    kind = ErrorKind.NOT_LINKED


class ContainerLimit(CarDataError):
    """The owner already has BMW's maximum of 10 containers and none of them is the bot's."""

    kind = ErrorKind.CONTAINER_LIMIT


class UnknownClient(CarDataError):
    """BMW does not know the client id (`invalid_client`)."""

    kind = ErrorKind.UNKNOWN_CLIENT


class ClientNotSubscribed(CarDataError):
    """BMW refused the device code request (`invalid_request`): the client lacks its API subscriptions."""

    kind = ErrorKind.CLIENT_NOT_SUBSCRIBED


class VehicleNotFound(CarDataError):
    kind = ErrorKind.UNKNOWN_CAR


class NotYourCar(CarDataError):
    """BMW's CU-104: the account may not read this car (not mapped to it, or only as a SECONDARY user)."""

    kind = ErrorKind.NOT_YOUR_CAR


class KeysRefused(CarDataError):
    """BMW's CU-402: the container asked for a data key BMW does not know (its catalogue changed)."""

    kind = ErrorKind.KEYS_REFUSED


class CarDataUnavailable(CarDataError):
    """Network errors, time-outs and 5xx answers."""

    kind = ErrorKind.UNAVAILABLE


class BadResponse(CarDataError):
    """Malformed JSON, or a body not of the documented shape."""

    kind = ErrorKind.BAD_RESPONSE
