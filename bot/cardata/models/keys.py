"""The telematic keys the bot reads, and the values of them it tells apart."""

from __future__ import annotations

from enum import StrEnum

from bot.car_status import FIELDS

CHARGING_STATUS = "vehicle.drivetrain.electricEngine.charging.status"
HV_STATUS = "vehicle.drivetrain.electricEngine.charging.hvStatus"
# The field table's keys (bot/car_status.py FIELDS), by name for the code that reads one on its own.
SOC_DISPLAYED, SOC_HEADER = FIELDS["soc"].cardata
(SOC_TARGET,) = FIELDS["target_soc"].cardata
(ELECTRIC_RANGE,) = FIELDS["electric_range_km"].cardata
(MILEAGE,) = FIELDS["mileage_km"].cardata
(FUEL_LITRES,) = FIELDS["fuel_litres"].cardata
(FUEL_PERCENT,) = FIELDS["fuel_percent"].cardata
PORT_STATUS = "vehicle.body.chargingPort.status"
IS_PLUGGED = "vehicle.powertrain.tractionBattery.charging.port.anyPosition.isPlugged"
TIME_REMAINING = "vehicle.drivetrain.electricEngine.charging.timeRemaining"
TOTAL_RANGE = "vehicle.drivetrain.lastRemainingRange"
LATITUDE = "vehicle.cabin.infotainment.navigation.currentLocation.latitude"
LONGITUDE = "vehicle.cabin.infotainment.navigation.currentLocation.longitude"
HEADING = "vehicle.cabin.infotainment.navigation.currentLocation.heading"
REASON_CHARGING_END = "vehicle.drivetrain.electricEngine.charging.reasonChargingEnd"
HVPM_FINISH_REASON = "vehicle.drivetrain.electricEngine.charging.hvpmFinishReason"  # iDrive 6 cars (i3)
LAST_CHARGING_RESULT = "vehicle.drivetrain.electricEngine.charging.lastChargingResult"
DOOR_STATUS = "vehicle.cabin.door.status"
DOOR_LOCK = "vehicle.cabin.door.lock.status"
# Each window's state (CLOSED, OPEN, INTERMEDIATE), by the i Remote API's name for it (texts.OPEN_NAMES).
WINDOW_KEYS = {
    "vehicle.cabin.window.row1.driver.status": "windowDriverFront",
    "vehicle.cabin.window.row1.passenger.status": "windowPassengerFront",
    "vehicle.cabin.window.row2.driver.status": "windowDriverRear",
    "vehicle.cabin.window.row2.passenger.status": "windowPassengerRear",
}

# The keys of the plug, the charging state and the doors (each part's age: the newest of them).
PLUG_KEYS = (PORT_STATUS, IS_PLUGGED)
CHARGING_KEYS = (CHARGING_STATUS, HV_STATUS, TIME_REMAINING)
DOOR_KEYS = (DOOR_STATUS, DOOR_LOCK)
# Keys only a car that streams each change sends (iDrive 7 and later): an i3 has no charge target and no
# reasonChargingEnd (docs/cardata.md, "What the simulator reproduces").
LIVE_ONLY_KEYS = (SOC_TARGET, REASON_CHARGING_END)

# What the bot's container asks for: status, charge events and position; every key of the field table.
BOT_KEYS: tuple[str, ...] = (
    *(key for field in FIELDS.values() for key in field.cardata),
    CHARGING_STATUS,
    HV_STATUS,
    PORT_STATUS,
    IS_PLUGGED,
    TIME_REMAINING,
    TOTAL_RANGE,
    LATITUDE,
    LONGITUDE,
    HEADING,
    REASON_CHARGING_END,
    HVPM_FINISH_REASON,
    LAST_CHARGING_RESULT,
    DOOR_STATUS,
    DOOR_LOCK,
    *WINDOW_KEYS,
)


class ChargingStatus(StrEnum):
    NOCHARGING = "NOCHARGING"
    INITIALIZATION = "INITIALIZATION"
    CHARGINGACTIVE = "CHARGINGACTIVE"
    CHARGINGPAUSED = "CHARGINGPAUSED"
    CHARGINGENDED = "CHARGINGENDED"
    CHARGINGERROR = "CHARGINGERROR"


class HvStatus(StrEnum):
    CHARGING = "CHARGING"
    FINISHED_FULLY_CHARGED = "FINISHED_FULLY_CHARGED"
    FINISHED_NOT_FULL = "FINISHED_NOT_FULL"
    INVALID = "INVALID"


class PortStatus(StrEnum):
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"


# The streamed door status says LOCKED, UNLOCKED, SELECTIVELOCKED (the driver's door open to the key) or
# SECURED; the REST-only lock status writes the selective lock SELECTIVE-LOCKED. Only two of them are locked.
LOCKED_STATES = frozenset({"LOCKED", "SECURED"})
UNLOCKED_STATES = frozenset({"UNLOCKED", "SELECTIVELOCKED", "SELECTIVE-LOCKED", "SELECTIVE_LOCKED"})
OPEN_WINDOW_STATES = frozenset({"OPEN", "INTERMEDIATE"})  # INTERMEDIATE: part open
# A charge that reached its goal, in hvpmFinishReason's words and in reasonChargingEnd's (SP25).
GOAL_REACHED_REASONS = frozenset({"CHARGING_GOAL_REACHED", "HV_BATTERY_FULLY_CHARGED"})
MAX_MILEAGE = 10_000_000  # km or mi; more is no mileage
KM_PER_MILE = 1.609344
