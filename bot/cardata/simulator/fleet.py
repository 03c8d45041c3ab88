"""The CarData simulator's cars: the telematic keys it serves and the two i3s of every account.

A car is a spec: its `basicData` body, its drive (range per %, fuel) and its starting telematic values as
`{key: (value, unit)}`. Values are strings, as CarData sends them. Where the public sources name a key but
not its values (end reasons, lock states) the simulator uses BMW's i Remote vocabulary; a client must keep
unknown values anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_BEV_VIN = "WBY8P2C05K7D40001"
DEFAULT_REX_VIN = "WBY1Z8C55HV550002"
DEFAULT_SECONDARY_VIN = "WBY7Z8C53JVB40003"  # a car the default account may see but not read (SECONDARY)

CHARGING_STATUS = "vehicle.drivetrain.electricEngine.charging.status"
HV_STATUS = "vehicle.drivetrain.electricEngine.charging.hvStatus"
SOC = "vehicle.drivetrain.batteryManagement.header"
SOC_DISPLAYED = "vehicle.powertrain.electric.battery.stateOfCharge.displayed"
SOC_TARGET = "vehicle.powertrain.electric.battery.stateOfCharge.target"
PORT_STATUS = "vehicle.body.chargingPort.status"
PLUGGED = "vehicle.powertrain.tractionBattery.charging.port.anyPosition.isPlugged"
TIME_REMAINING = "vehicle.drivetrain.electricEngine.charging.timeRemaining"
ELECTRIC_RANGE = "vehicle.drivetrain.electricEngine.kombiRemainingElectricRange"
TOTAL_RANGE = "vehicle.drivetrain.lastRemainingRange"
FUEL_LITRES = "vehicle.drivetrain.fuelSystem.remainingFuel"
FUEL_PERCENT = "vehicle.drivetrain.fuelSystem.level"
MILEAGE = "vehicle.vehicle.travelledDistance"
LATITUDE = "vehicle.cabin.infotainment.navigation.currentLocation.latitude"
LONGITUDE = "vehicle.cabin.infotainment.navigation.currentLocation.longitude"
HEADING = "vehicle.cabin.infotainment.navigation.currentLocation.heading"
END_REASON = "vehicle.drivetrain.electricEngine.charging.reasonChargingEnd"
LAST_RESULT = "vehicle.drivetrain.electricEngine.charging.lastChargingResult"
DOOR_STATUS = "vehicle.cabin.door.status"
LOCK_STATUS = "vehicle.cabin.door.lock.status"

# Served over REST but never streamed (the sources list the lock state as REST-only).
REST_ONLY_KEYS = frozenset({LOCK_STATUS})
KNOWN_KEYS = frozenset(
    {
        CHARGING_STATUS,
        HV_STATUS,
        SOC,
        SOC_DISPLAYED,
        SOC_TARGET,
        PORT_STATUS,
        PLUGGED,
        TIME_REMAINING,
        ELECTRIC_RANGE,
        TOTAL_RANGE,
        FUEL_LITRES,
        FUEL_PERCENT,
        MILEAGE,
        LATITUDE,
        LONGITUDE,
        HEADING,
        END_REASON,
        LAST_RESULT,
        DOOR_STATUS,
        LOCK_STATUS,
    }
)
CHARGING_STATES = (
    "NOCHARGING",
    "INITIALIZATION",
    "CHARGINGACTIVE",
    "CHARGINGPAUSED",
    "CHARGINGENDED",
    "CHARGINGERROR",
)


@dataclass(frozen=True)
class CarSpec:
    vin: str
    basic_data: dict[str, str | None]
    range_per_percent: float  # km of electric range per % of charge
    soc: float
    target: int
    values: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    fuel_range_km: int = 0  # the REX's range on fuel, added to the total range


def _parked(
    mileage: int, lat: float, lon: float, heading: int, reason: str
) -> dict[str, tuple[str, str | None]]:
    return {
        CHARGING_STATUS: ("NOCHARGING", None),
        HV_STATUS: ("INVALID", None),
        PORT_STATUS: ("DISCONNECTED", None),
        PLUGGED: ("false", None),
        TIME_REMAINING: ("0", "min"),
        MILEAGE: (str(mileage), "km"),
        LATITUDE: (f"{lat:.6f}", "degrees"),
        LONGITUDE: (f"{lon:.6f}", "degrees"),
        HEADING: (str(heading), "degrees"),
        END_REASON: (reason, None),
        LAST_RESULT: ("SUCCESS", None),
        DOOR_STATUS: ("SECURED", None),
        LOCK_STATUS: ("SECURED", None),
    }


def i3_bev(vin: str = DEFAULT_BEV_VIN) -> CarSpec:
    """A 2019 i3 120 Ah at BMW Welt: 64 %, 258 km at 100 %, target 80 %."""
    return CarSpec(
        vin=vin,
        basic_data={
            "vin": vin,
            "brand": "BMWi",
            "modelName": "i3 120Ah",
            "series": "I3",
            "bodyType": "I01",
            "driveTrain": "BEV",
            "propulsionType": "BEV",
            "hvsMaxEnergyAbsolute": "42.2",
            "constructionDate": "2019-03-11T00:00:00.000Z",
            "countryCodeISO": "DE",
            "colourCodeRaw": "B85",
            "steering": "LEFT",
        },
        range_per_percent=2.58,
        soc=64,
        target=80,
        values=_parked(23417, 48.177540, 11.556350, 214, "CHARGING_GOAL_REACHED"),
    )


def i3_rex(vin: str = DEFAULT_REX_VIN) -> CarSpec:
    """A 2017 i3 94 Ah with range extender in Schwabing: 38 %, 183 km electric at 100 %, 6.5 l of fuel."""
    values = _parked(41268, 48.161950, 11.586240, 87, "END_REQUESTED_BY_DRIVER")
    values[FUEL_LITRES] = ("6.5", "l")
    values[FUEL_PERCENT] = ("72", "%")
    return CarSpec(
        vin=vin,
        basic_data={
            "vin": vin,
            "brand": "BMWi",
            "modelName": "i3 94 (+REX)",
            "series": "I3",
            "bodyType": "I01",
            "driveTrain": "BEV_REX",
            "propulsionType": "REX",
            "hvsMaxEnergyAbsolute": "27.2",
            "constructionDate": "2017-06-20T00:00:00.000Z",
            "countryCodeISO": "DE",
            "colourCodeRaw": "B78",
            "steering": "LEFT",
        },
        range_per_percent=1.83,
        soc=38,
        target=100,
        values=values,
        fuel_range_km=112,
    )


def default_fleet(bev_vin: str = DEFAULT_BEV_VIN, rex_vin: str = DEFAULT_REX_VIN) -> list[CarSpec]:
    return [i3_bev(bev_vin), i3_rex(rex_vin)]
