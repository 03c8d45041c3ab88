"""Linking again and /unlink, end to end: the bot with both backends in the sandbox, CarData's simulator
over HTTP and its stream over TLS MQTT. /unlink forgets a user who only chose settings.
"""

from __future__ import annotations

import pytest
from telegram.ext import Application

from bot.chat import texts
from bot.config import Settings
from bot.sandbox.driver import Sandbox, SandboxUser
from tests.test_chat_cardata import (
    OWNER,
    garage_of,
    rows_about,
    until,
)

# The device flow polled every second (BMW: 5 s), so linking takes a second, not five.
pytestmark = pytest.mark.parametrize("cardata_simulator", [{"poll_interval": 1}], indirect=True)


@pytest.fixture
def user(sandbox: Sandbox) -> SandboxUser:
    return sandbox.user(OWNER, "Carla")


async def test_unlink_forgets_a_user_who_only_chose_settings(
    cardata_bot: Application, user: SandboxUser, cardata_bot_settings: Settings
) -> None:
    db_path = cardata_bot_settings.database_path
    user.send("/notify")
    user.press(await user.wait_for_bot_message("Which messages"), "Charging started")
    await until(lambda: garage_of(cardata_bot).notify_prefs(OWNER).started, "the /notify choice stored")
    user.send("/alerts")
    user.press(await user.wait_for_bot_message("Alerts about your cars"), "Charge level")
    await until(lambda: garage_of(cardata_bot).alert_prefs(OWNER).level_on, "the /alerts choice stored")
    assert rows_about(db_path, OWNER)["users"] == 1

    user.send("/unlink")
    ask = await user.wait_for_bot_message(texts.UNLINK_SETTINGS_ASK[:30])
    user.press(ask, "Yes, remove everything")
    await user.wait_for_bot_message(texts.UNLINK_SETTINGS_DONE[:20])
    assert not any(rows_about(db_path, OWNER).values())
    user.send("/unlink")  # nothing left to remove
    await user.wait_for_bot_message(texts.NOT_LINKED)
