"""The car service's own refusals (not BMW's): raised by the garage and the rooms it coordinates
(bot/iremote.py, bot/login_guard.py), worded for the user by the chat layer."""

from __future__ import annotations


class GarageError(Exception):
    """A refusal of the car service itself (not of BMW); the chat layer words it for the user."""


class NothingLinked(GarageError):
    pass


class CarNotLinked(GarageError):
    pass


class CommandInProgress(GarageError):
    pass


class TooManyCommands(GarageError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class TooManyLoginCodes(GarageError):
    """This user asked for DEVICE_CODES_PER_WINDOW new login codes within the window: none before
    `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class LoginCoolDown(GarageError):
    """Too many failed logins of this user or this e-mail: no login before `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class OwnerOnly(GarageError):
    """Only the car's owner may do that (a person it is shared with sees it, and no more: bot/sharing.py)."""


class OwnerMustRelink(GarageError):
    """BMW no longer accepts the stored password of the account of a car shared with the user."""


class RemoteNotAllowed(GarageError):
    """A person the car is shared with, whom its owner has not allowed remote commands."""


class UnsupportedByBackend(GarageError):
    """The backend of this user's account cannot do that (CarData is read-only, has no trips...)."""


class PasswordRefused(GarageError):
    """BMW no longer accepts the account's stored password; only a new /link helps. `just_marked`: this
    refusal made the account wait for a re-link (exactly one caller sees it, and tells the owner)."""

    def __init__(self, username: str, *, just_marked: bool = False) -> None:
        super().__init__("BMW refused the stored password")
        self.username = username
        self.just_marked = just_marked
