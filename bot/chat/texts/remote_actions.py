"""The remote services of the car, one `RemoteAction` row each."""

from __future__ import annotations

from dataclasses import dataclass

from bot.bmw.models import (
    ServiceType,
)
from bot.chat.i18n import Msg


@dataclass(frozen=True)
class RemoteAction:
    """One remote service of the car: a row is all it takes to add one. Its button under /status, its command
    (and /help line), its toasts, progress and result messages are all read from here."""

    service: ServiceType
    capability: str  # the car's capability flag that must be on
    name: str  # in progress messages, toasts and results
    done: str  # the result when the car carried it out; {car}
    code: str | None = None  # callback data of its status button, "<code>:<car ref>"; None: no button
    button: str | None = None  # that button's label
    command: str | None = None  # its command; None: none
    describe: str | None = None  # the command's line in /help and Telegram's menu
    asks_first: bool = False  # unlock: a confirmation first, and the security answer (bot/chat/remote.py)

    def __post_init__(self) -> None:
        if (self.code is None) != (self.button is None) or (self.command is None) != (self.describe is None):
            raise ValueError(f"{self.service}: a button needs a code and a label, a command a description")


# In the order of the buttons under /status and of the commands in /help.
REMOTE_ACTIONS: tuple[RemoteAction, ...] = (
    RemoteAction(
        ServiceType.DOOR_LOCK,
        "doorLock",
        name=Msg("Lock"),
        done=Msg("🔒 {car} is locked."),
        code="lock",
        button=Msg("🔒 Lock"),
        command="lock",
        describe=Msg("Lock the doors"),
    ),
    RemoteAction(
        ServiceType.DOOR_UNLOCK,
        "doorUnlock",
        name=Msg("Unlock"),
        done=Msg("🔓 {car} is unlocked."),
        code="unl",
        button=Msg("🔓 Unlock"),
        command="unlock",
        describe=Msg("Unlock the doors (asks first)"),
        asks_first=True,
    ),
    RemoteAction(
        ServiceType.CLIMATE_NOW,
        "climateNow",
        name=Msg("Climate"),
        done=Msg("❄️ Climate control is running in {car}."),
        code="clim",
        button=Msg("❄️ Climate"),
        command="climate",
        describe=Msg("Start climate control"),
    ),
    RemoteAction(
        ServiceType.CHARGE_NOW,
        "chargeNow",
        name=Msg("Charge now"),
        done=Msg("⚡ {car} has started charging."),
        code="chg",
        button=Msg("⚡ Charge"),
        command="charge",
        describe=Msg("Start charging now"),
    ),
    RemoteAction(
        ServiceType.LIGHT_FLASH,
        "lightFlash",
        name=Msg("Flash lights"),
        done=Msg("💡 {car} flashed its lights."),
        code="flash",
        button=Msg("💡 Flash"),
        command="flash",
        describe=Msg("Flash the lights"),
    ),
    RemoteAction(
        ServiceType.HORN_BLOW,
        "hornBlow",
        name=Msg("Horn"),
        done=Msg("📯 {car} sounded its horn."),
        code="horn",
        button=Msg("📯 Horn"),
    ),
    RemoteAction(
        ServiceType.VEHICLE_FINDER,
        "vehicleFinder",
        name=Msg("Find car"),
        done=Msg("📍 {car} reported where it is."),
        code="find",
        button=Msg("🔎 Find"),
    ),
    # Sent by Save in /schedule (bot/chat/schedule.py), which has its own command and buttons.
    RemoteAction(
        ServiceType.CHARGING_CONTROL,
        "chargingControl",
        name=Msg("Save charging schedule"),
        done=Msg("🗓 {car} took the new charging schedule."),
    ),
)
REMOTE_ACTION: dict[ServiceType, RemoteAction] = {action.service: action for action in REMOTE_ACTIONS}
SERVICE_NAMES: dict[ServiceType, str] = {action.service: action.name for action in REMOTE_ACTIONS}
