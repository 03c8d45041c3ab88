"""The refusals of the car services, whichever backend (the i Remote API in bot/bmw/errors.py, BMW CarData in
bot/cardata/errors.py): one base, `CarServiceError`, that the chat catches once, and each refusal's kind,
which the chat words in the user's language (`ERROR_SENTENCES` in bot/chat/texts/errors.py; `python -m bot
i18n check` names a kind without one). An error's own message is English, for logs: it never carries a
password, token, client id or a server's free text (which may echo what was sent)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    """What a user is told apart; both backends share a kind where the refusal means the same."""

    FAILED = "failed"  # anything not told apart
    UNAVAILABLE = "unavailable"  # network errors, time-outs and 5xx answers
    BAD_RESPONSE = "bad_response"  # malformed JSON, or a body not of the documented shape
    UNKNOWN_CAR = "unknown_car"  # no such VIN on this account
    # the i Remote API
    LOGIN_REFUSED = "login_refused"
    API_KEY_REFUSED = "api_key_refused"
    SECURITY_ANSWER_NEEDED = "security_answer_needed"
    SECURITY_ANSWER_WRONG = "security_answer_wrong"
    NOT_SUPPORTED = "not_supported"
    OTHER_REQUEST = "other_request"
    COMMAND_TIMEOUT = "command_timeout"
    # BMW CarData
    RELINK = "relink"
    BUDGET_SPENT = "budget_spent"
    NOT_LINKED = "not_linked"
    CONTAINER_LIMIT = "container_limit"
    UNKNOWN_CLIENT = "unknown_client"
    CLIENT_NOT_SUBSCRIBED = "client_not_subscribed"
    NOT_YOUR_CAR = "not_your_car"
    KEYS_REFUSED = "keys_refused"


class CarServiceError(Exception):
    """Base of every error leaving a car service's client; `str(error)` is English safe to log."""

    kind: ClassVar[ErrorKind] = ErrorKind.FAILED

    def __init__(self, message: str | None = None, *, status_code: int | None = None) -> None:
        self.message = message or f"{type(self).__name__} ({self.kind})"
        # The HTTP status that caused it, when there was one (for logs and the caller's decisions).
        self.status_code = status_code
        super().__init__(self.message)
