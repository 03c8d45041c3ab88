"""Typed views of the BMW i Remote API's JSON bodies.

Tolerant inside, strict at the top: real cars omit many fields (a conventional car sends 4–6 keys, a
PHEV sends `lastTrip: {}`), so a missing or mistyped field becomes None and an unknown enum value is kept
as its raw string. But a body that is not a JSON object, or lacks its documented top-level key, is not
this API at all and raises `BadResponse`.
"""

from bot.bmw.models.account import SERVERS, Account, Region, Token
from bot.bmw.models.charging_profile import PROFILE_KINDS, ChargingProfile, ChargingWindow, Timer
from bot.bmw.models.places import Destination, Poi
from bot.bmw.models.range_map import RangeMap, RangePolyline
from bot.bmw.models.services import TERMINAL_STATES, ExecutionState, ExecutionStatus, ServiceType
from bot.bmw.models.status import Position, VehicleStatus
from bot.bmw.models.trips import AllTrips, CommunityStat, LastTrip
from bot.bmw.models.vehicle import CAPABILITY_FLAGS, ELECTRIC_DRIVE_TRAINS, Vehicle

__all__ = [
    "CAPABILITY_FLAGS",
    "ELECTRIC_DRIVE_TRAINS",
    "PROFILE_KINDS",
    "SERVERS",
    "TERMINAL_STATES",
    "Account",
    "AllTrips",
    "ChargingProfile",
    "ChargingWindow",
    "CommunityStat",
    "Destination",
    "ExecutionState",
    "ExecutionStatus",
    "LastTrip",
    "Poi",
    "Position",
    "RangeMap",
    "RangePolyline",
    "Region",
    "ServiceType",
    "Timer",
    "Token",
    "Vehicle",
    "VehicleStatus",
]
