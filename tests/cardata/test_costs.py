"""Costs of a CarData car's charges (issue 21, point 7): the ones the bot recorded from the stream and BMW's
own charging history get the owner's home tariff, in /history and its CSV, like an i Remote car's."""

from __future__ import annotations

import pytest
from telegram.ext import Application

from bot.cardata.simulator import CardataSimulator
from bot.history import CSV_COLUMNS
from bot.sandbox.driver import SandboxUser
from tests.cardata.test_quiet import linked
from tests.chat.test_cardata import csv_rows

pytestmark = pytest.mark.parametrize("cardata_simulator", [{"poll_interval": 1}], indirect=True)
__all__ = ["linked"]


async def test_a_cardata_cars_charges_get_the_home_tariff(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    user.send("/settings")
    menu = await user.wait_for_bot_message("Your settings")
    user.press(menu, "💶 Home tariff")
    await user.wait_for_bot_message("Send what a kWh costs you at home")
    user.send("0.25")
    await user.wait_for_bot_message("Saved. /history shows")
    user.send("/history")
    listing = await user.wait_for_bot_message("Charging history of")
    rows = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in (await csv_rows(user, listing))[1:]]
    charges = [row for row in rows if row["kind"] == "charge" and row["energy_kwh_estimated"]]
    assert charges, rows
    priced = [row for row in charges if row["cost_estimated"]]
    assert priced and {row["currency"] for row in priced} == {"USD"}, charges
    assert all(
        float(row["cost_estimated"]) == round(float(row["energy_kwh_estimated"]) * 0.25, 2) for row in priced
    )
    assert f"≈ ${float(priced[-1]['cost_estimated']):.2f}" in listing.text
