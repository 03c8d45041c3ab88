"""The CarData simulator's cars: the telematic keys it serves and the two i3s of every account.

A car is a spec: its `basicData` body, its drive (range per %, fuel), its kind and its starting telematic
values as `{key: (value, unit)}`. Values are strings, as CarData sends them; `unit` None where BMW sends none.

The kind is how the car streams (docs/cardata.md, "What the simulator reproduces"): a *quiet* car (iDrive 6,
every i3) sends a burst of all its keys when it is switched off and when a charge ends at 100 %, nothing in
between, has no charge target, `hvStatus` or `reasonChargingEnd`, and says why a charge ended in
`hvpmFinishReason`; a *live* car (iDrive 7 and later) streams each change, with `reasonChargingEnd` in BMW's
SP25 values. A client must keep values it does not know anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.car_status import FIELDS
from bot.cardata.models import keys as cd

DEFAULT_BEV_VIN = "WBY8P2C05K7D40001"
DEFAULT_REX_VIN = "WBY1Z8C55HV550002"
DEFAULT_SECONDARY_VIN = "WBY7Z8C53JVB40003"  # a car the default account may see but not read (SECONDARY)

# The telematic keys are the bot's own (bot/cardata/models/keys.py): one spelling for the car and its reader.
# The windows by the part of their key the simulator's control surface takes ("row1.driver").
WINDOW_STATUS = {
    key.removeprefix("vehicle.cabin.window.").removesuffix(".status"): key for key in cd.WINDOW_KEYS
}
WINDOWS = tuple(WINDOW_STATUS)
WINDOW_STATES = ("CLOSED", "OPEN", "INTERMEDIATE")
# The streamed door status, and the REST-only lock status each of them goes with.
DOOR_STATES = {
    "LOCKED": "LOCKED",
    "UNLOCKED": "UNLOCKED",
    "SELECTIVELOCKED": "SELECTIVE-LOCKED",
    "SECURED": "SECURED",
}

CarKind = Literal["quiet", "live"]
CAR_KINDS: tuple[CarKind, ...] = ("quiet", "live")
# Why a charge ended, as a quiet car says it in hvpmFinishReason (the simulator's own vocabulary too), and
# as a live car says it in reasonChargingEnd. The catalogue names HV_BATTERY_FULLY_CHARGED and the
# CUSTOMER_INTERACTION_… family; these two spellings of the latter are the simulator's assumption.
GOAL_REACHED = "CHARGING_GOAL_REACHED"
BY_DRIVER = "END_REQUESTED_BY_DRIVER"
CONNECTOR_REMOVED = "CONNECTOR_REMOVED"
SP25_END_REASONS = {
    GOAL_REACHED: "HV_BATTERY_FULLY_CHARGED",
    BY_DRIVER: "CUSTOMER_INTERACTION_STOP_CHARGING",
    CONNECTOR_REMOVED: "CUSTOMER_INTERACTION_PLUG_REMOVED",
}
# Keys a car of that kind does not have at all (neither streamed nor served over REST).
ABSENT_KEYS: dict[CarKind, frozenset[str]] = {
    "quiet": frozenset({cd.SOC_TARGET, cd.HV_STATUS, cd.REASON_CHARGING_END}),
    "live": frozenset({cd.HVPM_FINISH_REASON}),
}

# Served over REST but never streamed (the sources list the lock state as REST-only).
REST_ONLY_KEYS = frozenset({cd.DOOR_LOCK})
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
    kind: CarKind = "quiet"  # every i3 is an iDrive 6 car

    @property
    def served(self) -> dict[str, tuple[str, str | None]]:
        """What the car starts with: its `values`, and the sample of each field of the bot's table
        (bot/car_status.py FIELDS) whose keys it has none of."""
        samples = {
            field.cardata[0]: (f"{field.sample:g}", field.unit.symbol)
            for field in FIELDS.values()
            if field.sample is not None and not set(field.cardata) & set(self.values)
        }
        return {**samples, **self.values}


def _parked(lat: float, lon: float, heading: int, reason: str) -> dict[str, tuple[str, str | None]]:
    """A parked, locked car; `reason` why its last charge ended (each kind keeps the key it has)."""
    return {
        cd.CHARGING_STATUS: ("NOCHARGING", None),
        cd.HV_STATUS: ("INVALID", None),
        cd.PORT_STATUS: ("DISCONNECTED", None),
        cd.IS_PLUGGED: ("false", None),
        cd.TIME_REMAINING: ("0", "min"),
        cd.LATITUDE: (f"{lat:.6f}", "degrees"),
        cd.LONGITUDE: (f"{lon:.6f}", "degrees"),
        cd.HEADING: (str(heading), "degrees"),
        cd.REASON_CHARGING_END: (SP25_END_REASONS.get(reason, reason), None),
        cd.HVPM_FINISH_REASON: (reason, None),
        cd.LAST_CHARGING_RESULT: ("SUCCESS", None),
        cd.DOOR_STATUS: ("SECURED", None),
        cd.DOOR_LOCK: ("SECURED", None),
        **{key: ("CLOSED", None) for key in WINDOW_STATUS.values()},
    }


def i3_bev(vin: str = DEFAULT_BEV_VIN, kind: CarKind = "quiet") -> CarSpec:
    """A 2019 i3 120 Ah at BMW Welt: 64 %, 258 km at 100 %; target 80 % when live (a quiet car charges to
    100 %); the table's sample mileage."""
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
        values=_parked(48.177540, 11.556350, 214, GOAL_REACHED),
        kind=kind,
    )


def i3_rex(vin: str = DEFAULT_REX_VIN, kind: CarKind = "quiet") -> CarSpec:
    """A 2017 i3 94 Ah with range extender in Schwabing: 38 %, 183 km electric at 100 %, 6.5 l of fuel."""
    values = _parked(48.161950, 11.586240, 87, BY_DRIVER)
    values[cd.MILEAGE] = ("41268", None)  # BMW sends this one without a unit
    values[cd.FUEL_LITRES] = ("6.5", "l")
    values[cd.FUEL_PERCENT] = ("72", "%")
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
        kind=kind,
    )


def default_fleet(
    bev_vin: str = DEFAULT_BEV_VIN, rex_vin: str = DEFAULT_REX_VIN, kind: CarKind = "quiet"
) -> list[CarSpec]:
    return [i3_bev(bev_vin, kind), i3_rex(rex_vin, kind)]
