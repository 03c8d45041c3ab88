"""The small set of errors every caller of the BMW client sees.

Every exception leaving `bot.bmw.client` is a `BMWError`. Each message is safe to show a user as is: it
never contains a password, token or security answer (server descriptions are not copied into it either,
since they may echo what was sent).
"""

from __future__ import annotations

from typing import ClassVar


class BMWError(Exception):
    """Base of all BMW errors; `str(error)` is a user-safe sentence."""

    default_message: ClassVar[str] = "The BMW service failed."

    def __init__(self, message: str | None = None, *, status_code: int | None = None) -> None:
        self.message = message or self.default_message
        # The HTTP status that caused it, when there was one (for logs and the caller's decisions).
        self.status_code = status_code
        super().__init__(self.message)


class AuthenticationError(BMWError):
    """The username or password was refused (token endpoint `invalid_grant`, 400/401)."""

    default_message = "BMW refused the username or password."


class ApiCredentialsError(BMWError):
    """The API key/secret was refused (`invalid_client`): the operator's configuration, not the user's."""

    default_message = "BMW refused this bot's API key; the bot's operator must fix its configuration."


class SecurityAnswerRequired(BMWError):
    """The service needs the account's security answer ("secretKnowledge is missing but required!")."""

    default_message = "BMW needs the answer to your security question for this command."


class WrongSecurityAnswer(BMWError):
    """The security answer was refused (any other "secretKnowledge" error)."""

    default_message = "BMW refused the security answer."


class NotSupported(BMWError):
    """The car does not support that service (400 on executeService)."""

    default_message = "This car does not support that command."


class VehicleNotFound(BMWError):
    """No such VIN on this account (404)."""

    default_message = "BMW does not know this car on your account."


class BMWUnavailable(BMWError):
    """Network errors, time-outs and 5xx answers (after the GET retries)."""

    default_message = "The BMW service is not reachable right now; please try again later."


class BadResponse(BMWError):
    """Malformed JSON, or a body not of the documented shape."""

    default_message = "BMW answered with something this bot does not understand."


class OtherRequest(BMWError):
    """The service status BMW shows (always its latest request of that type) is for another request."""

    default_message = "BMW now shows a later command of that kind, so this one's outcome is unknown."


class ServiceTimeout(BMWError):
    """A remote service reached no terminal status before the deadline; `.last_status` is the last one seen
    (an ExecutionState value, or None before any)."""

    default_message = "The car did not confirm the command in time; it may still carry it out."

    def __init__(self, message: str | None = None, *, last_status: str | None = None) -> None:
        super().__init__(message)
        self.last_status = last_status
