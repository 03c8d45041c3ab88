"""The faithful BMW i Remote API simulator: develop, test and demo without a BMW account.

`Simulator()` then `.add_default_account()` gives demo@example.com / demo-password with an i3 BEV and an
i3 REX; serve `.app` with `bot.servers.BackgroundServer` or call it through `httpx.ASGITransport`.
"""

from bot.bmw.simulator.accounts import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_ANSWER,
    DEFAULT_USERNAME,
)
from bot.bmw.simulator.car import SERVICE_MODES, ServiceMode, SimVehicle
from bot.bmw.simulator.faults import Fault, RequestRecord
from bot.bmw.simulator.fleet import DEFAULT_BEV_VIN, DEFAULT_REX_VIN, default_fleet, i3_bev, i3_rex
from bot.bmw.simulator.state import Simulator

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "DEFAULT_BEV_VIN",
    "DEFAULT_PASSWORD",
    "DEFAULT_REX_VIN",
    "DEFAULT_SECURITY_ANSWER",
    "DEFAULT_USERNAME",
    "SERVICE_MODES",
    "Fault",
    "RequestRecord",
    "ServiceMode",
    "SimVehicle",
    "Simulator",
    "default_fleet",
    "i3_bev",
    "i3_rex",
]
