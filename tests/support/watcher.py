"""Driving the charge watcher in tests and benchmarks: cycles far ahead of the wall clock, push texts."""

from __future__ import annotations

import time

from telegram.ext import Application

from bot.bmw.simulator import Simulator
from bot.watcher import MAX_BACKOFF_SECONDS, CycleReport

FINISHED = "has finished charging"
STOPPED = "stopped charging before it was full"


class Cycles:
    """Runs watcher cycles directly (not on the JobQueue's timer) at a clock far ahead of the wall clock, so
    every car is due on each cycle and the bot's own ticks, on the wall clock, find nothing due."""

    def __init__(self) -> None:
        self.now = time.time() + 1e7

    async def __call__(self, application: Application) -> CycleReport:
        self.now += 2 * MAX_BACKOFF_SECONDS  # past every poll interval and backoff
        return await application.bot_data.services.watcher.cycle(self.now)

    async def charging_near_full(self, application: Application, simulator: Simulator, vin: str) -> None:
        """The linked car seen idle, then plugged in at 95 % and seen charging: ten minutes more fill it."""
        await self(application)
        simulator.set_status(vin, chargingLevelHv=95)
        simulator.plug_in(vin, charging=True)
        await self(application)


async def short_charge_unseen(simulator: Simulator, vin: str, soc: int = 75) -> None:
    """Plugged in at `soc` % between two polls, five minutes reach the owner's goal (+5 %), and the car stops
    with the cable still in, reporting as real i3s did (NOT_CHARGING, the end reason and result)."""
    simulator.set_status(vin, chargingLevelHv=soc)
    simulator.plug_in(vin, charging=True)
    simulator.advance(5 * 60 + 30)  # 1 %/min
    simulator.set_status(
        vin,
        chargingStatus="NOT_CHARGING",
        lastChargingEndReason="CHARGING_GOAL_REACHED",
        lastChargingEndResult="SUCCESS",
    )
