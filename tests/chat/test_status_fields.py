"""The field table (bot/car_status.py FIELDS) end to end: every reading with a line of its own shows in
/status from both backends, read from what their simulators serve over HTTP. A row a backend cannot read,
or one without its entry in FIELD_LINES, fails here (docs/where-to-change.md, "A new read-only field")."""

from __future__ import annotations

import pytest
from telegram.ext import Application

from bot.car_status import FIELDS, Field
from bot.cardata.simulator import DEFAULT_BEV_VIN, CardataSimulator
from bot.chat import prefs
from bot.chat.texts.status import FIELD_LINES, field_line
from bot.sandbox.driver import SandboxUser
from tests.chat.test_cardata import cardata_of, link_cardata
from tests.support.bot import BEV_VIN, link
from tests.support.cardata import OWNER

LINED = [name for name, line in FIELD_LINES.items() if line is not None]


def shown(field: Field, value: float) -> str:
    """The field's line as an English user reads it."""
    with prefs.using(prefs.Prefs(language="en", locale="en")):
        return field_line(field, value)


def test_every_field_of_the_table_has_its_line_or_says_it_has_none() -> None:
    assert set(FIELD_LINES) == set(FIELDS)
    assert LINED  # the table's own lines are tested below


@pytest.mark.parametrize("name", LINED)
async def test_a_field_with_a_line_shows_in_status_from_the_i_remote_api(
    name: str, bot: Application, sandbox, simulator
) -> None:
    field = FIELDS[name]
    assert field.iremote is not None, "the i Remote API cannot read it"
    value = simulator.vehicle(BEV_VIN).status.get(field.iremote)
    assert value is not None, "the i Remote simulator does not serve it"
    user = sandbox.user(301)
    await link(user)
    user.send("/status")
    status = await user.wait_for_bot_message("updated")
    assert shown(field, float(value)) in (status.text or "")


@pytest.mark.parametrize("name", LINED)
async def test_a_field_with_a_line_shows_in_status_from_cardata(
    name: str, cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    field = FIELDS[name]
    served = [v for key in field.cardata if (v := cardata_simulator.value(DEFAULT_BEV_VIN, key)) is not None]
    assert served, "the CarData simulator does not serve it"
    await link_cardata(user, cardata_simulator)
    await cardata_of(cardata_bot).supervisor.wait_connected(OWNER)
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    assert shown(field, float(served[0])) in (status.text or "")
