"""The small set of errors every caller of the BMW client sees.

Every exception leaving `bot.bmw.client` is a `BMWError`, a `CarServiceError` (bot/car_errors.py): its kind
is what the chat words for the user; its message is English for logs, and never contains a password, token or
security answer (server descriptions are not copied into it either, since they may echo what was sent).
"""

from __future__ import annotations

from bot.car_errors import CarServiceError, ErrorKind


class BMWError(CarServiceError):
    """Base of all BMW errors."""


class AuthenticationError(BMWError):
    """The username or password was refused (token endpoint `invalid_grant`, 400/401)."""

    kind = ErrorKind.LOGIN_REFUSED


class ApiCredentialsError(BMWError):
    """The API key/secret was refused (`invalid_client`): the operator's configuration, not the user's."""

    kind = ErrorKind.API_KEY_REFUSED


class SecurityAnswerRequired(BMWError):
    """The service needs the account's security answer ("secretKnowledge is missing but required!")."""

    kind = ErrorKind.SECURITY_ANSWER_NEEDED


class WrongSecurityAnswer(BMWError):
    """The security answer was refused (any other "secretKnowledge" error)."""

    kind = ErrorKind.SECURITY_ANSWER_WRONG


class NotSupported(BMWError):
    """The car does not support that service (400 on executeService)."""

    kind = ErrorKind.NOT_SUPPORTED


class VehicleNotFound(BMWError):
    """No such VIN on this account (404)."""

    kind = ErrorKind.UNKNOWN_CAR


class BMWUnavailable(BMWError):
    """Network errors, time-outs and 5xx answers (after the GET retries)."""

    kind = ErrorKind.UNAVAILABLE


class BadResponse(BMWError):
    """Malformed JSON, or a body not of the documented shape."""

    kind = ErrorKind.BAD_RESPONSE


class OtherRequest(BMWError):
    """The service status BMW shows (always its latest request of that type) is for another request."""

    kind = ErrorKind.OTHER_REQUEST


class ServiceTimeout(BMWError):
    """A remote service reached no terminal status before the deadline; `.last_status` is the last one seen
    (an ExecutionState value, or None before any)."""

    kind = ErrorKind.COMMAND_TIMEOUT

    def __init__(self, message: str | None = None, *, last_status: str | None = None) -> None:
        super().__init__(message)
        self.last_status = last_status
