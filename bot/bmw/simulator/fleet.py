"""Starting fleet of the simulator and builders of the bodies it serves.

A car is described by a *spec*: a dict with the API's own bodies, so what the simulator serves is
exactly what is written here::

    {"vehicle": <entry of GET /user/vehicles>, "status": <vehicleStatus>, "lastTrip": {...},
     "allTrips": {...}, "chargingProfile": {"weeklyPlanner" | "twoTimesTimer": {...}},
     "destinations": [...]}

Only "vehicle" (with its "vin") is required; a missing body is served empty, as real servers did for
cars without the feature. The default fleet is the documented i3 pair (docs/i-remote-api.md), with the
quirks real i3s showed kept (a BEV reporting `remainingFuel: 0`, `rearWindow: INVALID`,
`chargingStatus: INVALID` when idle).
"""

from __future__ import annotations

import math
import zlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

DEFAULT_BEV_VIN = "WBY1Z21000V300001"
DEFAULT_REX_VIN = "WBY1Z41000V300002"

# The cars report local time with a numeric offset ("2015-10-30T18:45:04+0100"); Munich in winter time.
# A fixed offset keeps the simulator free of a tz database (absent on some hosts).
CAR_TZ = timezone(timedelta(hours=1))
KM_TO_MILES = 0.621371
RANGE_MAP_POINTS = 50  # per polygon, the closing point included (bimmer_connected#116)


def car_time(t: float) -> str:
    """Epoch seconds in the cars' format, e.g. "2015-10-30T18:45:04+0100"."""
    return datetime.fromtimestamp(t, CAR_TZ).strftime("%Y-%m-%dT%H:%M:%S%z")


def utc_time(t: float) -> str:
    """Epoch seconds in the `internalDataTimeUTC` format (UTC, no offset)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _capabilities(**overrides: Any) -> dict[str, Any]:
    flags: dict[str, Any] = {
        "remote360": "NOT_SUPPORTED",
        "chargingControl": "WEEKLY_PLANNER",
        "hornBlow": "ACTIVATED",
        "smartSolution": "NOT_SUPPORTED",
        "climateControl": "NOT_SUPPORTED",
        "doorUnlock": "ACTIVATED",
        "rangeMap": "RANGE_POLYGON",
        "climateFunction": "AIRCONDITIONING",
        "lscType": "I_LSC_IMM",
        "doorLock": "ACTIVATED",
        "intermodalRouting": "AVAILABLE",
        "vehicleFinder": "ACTIVATED",
        "vehicleFinderRestriction": "NONE",
        "chargeNow": "ACTIVATED",
        "supportedChargingModes": ["AC_LOW", "AC_HIGH", "DC"],
        "sendPoi": "ACTIVATED",
        "climateNow": "ACTIVATED",
        "lightFlash": "ACTIVATED",
        "onlineSearchMode": "MAP",
        "onlineSearchProvider": "GOOGLE",
        "lastDestinations": "SUPPORTED",
        "statisticsAvailable": True,
        "statisticsCommunityEnabled": True,
        "a4a": "USB_ONLY",
        "ipa": "NOT_SUPPORTED",
        "carCloud": "NOT_SUPPORTED",
    }
    flags.update(overrides)
    return flags


_DEALER = {
    "name": "BMW AG Niederlassung München",
    "street": "Frankfurter Ring 35",
    "postalCode": "80807",
    "city": "München",
    "country": "DE",
}


def _battery(soc: float, max_range_km: int) -> dict[str, Any]:
    remaining = round(max_range_km * soc / 100)
    return {
        "chargingLevelHv": int(soc),
        "remainingRangeElectric": remaining,
        "remainingRangeElectricMls": round(remaining * KM_TO_MILES),
        "maxRangeElectric": max_range_km,
        "maxRangeElectricMls": round(max_range_km * KM_TO_MILES),
    }


def _closed_car(now: float) -> dict[str, Any]:
    """Status fields every i3 reports parked and locked with the key fob."""
    due = datetime.fromtimestamp(now + 400 * 86400, CAR_TZ).strftime("%Y-%m")
    return {
        "updateReason": "VEHICLE_SHUTDOWN_SECURED",
        "updateTime": car_time(now - 47 * 60),
        "internalDataTimeUTC": utc_time(now - 47 * 60),
        "doorDriverFront": "CLOSED",
        "doorDriverRear": "CLOSED",
        "doorPassengerFront": "CLOSED",
        "doorPassengerRear": "CLOSED",
        "windowDriverFront": "CLOSED",
        "windowDriverRear": "CLOSED",
        "windowPassengerFront": "CLOSED",
        "windowPassengerRear": "CLOSED",
        "trunk": "CLOSED",
        "rearWindow": "INVALID",
        "convertibleRoofState": "INVALID",
        "hood": "CLOSED",
        "doorLockState": "SECURED",
        "parkingLight": "OFF",
        "positionLight": "OFF",
        "connectionStatus": "DISCONNECTED",
        "chargingStatus": "INVALID",
        "chargingConnectionType": "CONDUCTIVE",
        "chargingInductivePositioning": "NOT_POSITIONED",
        "singleImmediateCharging": False,
        "vehicleCountry": "DE",
        "steering": "LH",
        "checkControlMessages": [],
        "cbsData": [
            {
                "cbsType": "BRAKE_FLUID",
                "cbsState": "OK",
                "cbsDueDate": due,
                "cbsDescription": "Next change due at the latest by the stated date.",
            },
            {
                "cbsType": "VEHICLE_CHECK",
                "cbsState": "OK",
                "cbsDueDate": due,
                "cbsDescription": "Next visual inspection due when the stated distance has been covered "
                "or by the stated date.",
            },
        ],
        "DCS_CCH_Activation": "NA",
        "DCS_CCH_Ongoing": False,
    }


def i3_bev(vin: str = DEFAULT_BEV_VIN, *, now: float) -> dict[str, Any]:
    """A 2019 i3 120 Ah parked at BMW Welt: two-times timer, CHARGE_NOW and horn supported."""
    status = {
        "vin": vin,  # its mileage: the bot's field table's sample (bot/car_status.py FIELDS)
        **_closed_car(now),
        "sunroof": "CLOSED",
        "remainingFuel": 0,  # real BEVs report an empty tank they do not have
        **_battery(64, 258),
        "lastChargingEndReason": "CHARGING_GOAL_REACHED",
        "lastChargingEndResult": "SUCCESS",
        "position": {"lat": 48.177540, "lon": 11.556350, "heading": 214, "status": "OK"},
    }
    return {
        "vehicle": {
            "vin": vin,
            "model": "I3",
            "bodytype": "I01",
            "driveTrain": "BEV",
            "brand": "BMW_I",
            "color": "CAPPARISWEISS MIT AKZENT BMW I BLAU",
            "colorCode": "B85",
            "yearOfConstruction": 2019,
            "licensePlate": "M-EV 301E",
            "countryCode": "V6",
            "hub": "HUB_ECE",
            "hmiVersion": "ID5",
            "steering": "LH",
            "hasAlarmSystem": True,
            "breakdownNumber": "+4989358957103",
            "dealer": dict(_DEALER),
            **_capabilities(chargingControl="TWO_TIMES_TIMER"),
        },
        "status": status,
        "lastTrip": {
            "efficiencyValue": 0.72,
            "totalDistance": 18.4,
            "electricDistance": 18.4,
            "avgElectricConsumption": 13.9,
            "avgRecuperation": 4.1,
            "drivingModeValue": 0.6,
            "accelerationValue": 0.74,
            "anticipationValue": 0.86,
            "totalConsumptionValue": 0.71,
            "auxiliaryConsumptionValue": 0.58,
            "avgCombinedConsumption": 0,
            "electricDistanceRatio": 100,
            "savedFuel": 0,
            "date": car_time(now - 80 * 60),
            "duration": 31,
        },
        "allTrips": _all_trips(user_average=13.2, recuperation=3.9, cycle=(188.4, 241, 121), total=23051.7),
        "chargingProfile": {
            "twoTimesTimer": {
                "climatizationEnabled": True,
                "chargingMode": "DELAYED_CHARGING",
                "chargingPreferences": "CHARGING_WINDOW",
                "timer1": {"departureTime": "07:30", "timerEnabled": True},
                "timer2": {"departureTime": "17:15", "timerEnabled": False},
                "preferredChargingWindow": {"enabled": True, "startTime": "22:00", "endTime": "06:00"},
            }
        },
        "destinations": [
            _destination(48.140228, 11.558338, "BAYERSTRASSE", now - 2 * 86400),
            _destination(48.218775, 11.624753, "WERNER-HEISENBERG-ALLEE", now - 9 * 86400),
        ],
    }


def i3_rex(vin: str = DEFAULT_REX_VIN, *, now: float) -> dict[str, Any]:
    """A 2017 i3 94 Ah +REX in Schwabing, as the UK example: weekly planner, no horn, no CHARGE_NOW."""
    status = {
        "vin": vin,
        "mileage": 41268,
        **_closed_car(now),
        "remainingFuel": 6.5,
        "maxFuel": 9,
        "fuelPercent": 72,
        "remainingRangeFuel": 112,
        "remainingRangeFuelMls": round(112 * KM_TO_MILES),
        **_battery(38, 183),
        "lastChargingEndReason": "END_REQUESTED_BY_DRIVER",
        "lastChargingEndResult": "SUCCESS",
        "position": {"lat": 48.161950, "lon": 11.586240, "heading": 87, "status": "OK"},
    }
    return {
        "vehicle": {
            "vin": vin,
            "model": "I3 +REX",
            "bodytype": "I01",
            "driveTrain": "BEV_REX",
            "brand": "BMW_I",
            "color": "SOLARORANGE MET. M. AKZENT FROZEN G",
            "colorCode": "B78",
            "yearOfConstruction": 2017,
            "licensePlate": "M-RX 302E",
            "countryCode": "V6",
            "hub": "HUB_ECE",
            "hmiVersion": "ID4",
            "steering": "LH",
            "hasAlarmSystem": True,
            "breakdownNumber": "+4989358957103",
            "dealer": dict(_DEALER),
            **_capabilities(hornBlow="NOT_SUPPORTED", chargeNow="NOT_SUPPORTED"),
        },
        "status": status,
        "lastTrip": {
            "efficiencyValue": 0.53,
            "totalDistance": 141,
            "electricDistance": 100.1,
            "avgElectricConsumption": 16.6,
            "avgRecuperation": 2,
            "drivingModeValue": 0,
            "accelerationValue": 0.39,
            "anticipationValue": 0.81,
            "totalConsumptionValue": 0.79,
            "auxiliaryConsumptionValue": 0.66,
            "avgCombinedConsumption": 1.9,
            "electricDistanceRatio": 71,
            "savedFuel": 0,
            "date": car_time(now - 26 * 3600),
            "duration": 124,
        },
        "allTrips": _all_trips(user_average=14.76, recuperation=2.3, cycle=(72.62, 135, 60), total=3158.66),
        "chargingProfile": {
            "weeklyPlanner": {
                "climatizationEnabled": True,
                "chargingMode": "DELAYED_CHARGING",
                "chargingPreferences": "CHARGING_WINDOW",
                "timer1": {"departureTime": "07:30", "timerEnabled": True, "weekdays": ["MONDAY", "TUESDAY"]},
                "timer2": {"departureTime": "13:00", "timerEnabled": False, "weekdays": ["SATURDAY"]},
                "timer3": {"departureTime": "08:00", "timerEnabled": False, "weekdays": []},
                "overrideTimer": {"departureTime": "07:30", "timerEnabled": False, "weekdays": ["MONDAY"]},
                "preferredChargingWindow": {"enabled": True, "startTime": "05:02", "endTime": "17:31"},
            }
        },
        "destinations": [_destination(47.491710, 11.095530, "BAHNHOFSTRASSE", now - 5 * 86400, "GARMISCH")],
    }


def default_fleet(bev_vin: str, rex_vin: str, *, now: float) -> list[dict[str, Any]]:
    return [i3_bev(bev_vin, now=now), i3_rex(rex_vin, now=now)]


def _destination(lat: float, lon: float, street: str, at: float, city: str = "MÜNCHEN") -> dict[str, Any]:
    return {
        "lat": lat,
        "lon": lon,
        "country": "DEUTSCHLAND",
        "city": city,
        "street": street,
        "type": "DESTINATION",
        "createdAt": car_time(at),
    }


def _all_trips(
    *, user_average: float, recuperation: float, cycle: tuple[float, float, float], total: float
) -> dict[str, Any]:
    cycle_average, cycle_high, cycle_current = cycle
    return {
        "avgElectricConsumption": {
            "communityLow": 0,
            "communityAverage": 16.33,
            "communityHigh": 35.53,
            "userAverage": user_average,
        },
        "avgRecuperation": {
            "communityLow": 0,
            "communityAverage": 3.76,
            "communityHigh": 14.03,
            "userAverage": recuperation,
        },
        "chargecycleRange": {
            "communityAverage": 121.58,
            "communityHigh": 200,
            "userAverage": cycle_average,
            "userHigh": cycle_high,
            "userCurrentChargeCycle": cycle_current,
        },
        "totalElectricDistance": {
            "communityLow": 1,
            "communityAverage": 12293.65,
            "communityHigh": 77533.6,
            "userTotal": total,
        },
        "avgCombinedConsumption": {
            "communityLow": 0,
            "communityAverage": 1.21,
            "communityHigh": 6.2,
            "userAverage": 0.36,
        },
        "batterySizeMax": 35820,
        "savedCO2": 87.58,
        "savedCO2greenEnergy": 515.177,
        "totalSavedFuel": 0,
        "resetDate": "1970-01-01T01:00:00+0100",
    }


def range_map(vin: str, status: dict[str, Any]) -> dict[str, Any]:
    """The rangemap body around the car: ECO_PRO_PLUS and COMFORT as closed, irregular polygons.

    The radius follows remainingRangeElectric (reach is shorter than road range, Eco Pro+ goes further);
    the wobble is seeded by the VIN so a car's map is stable between calls. A car without position or
    electric range (or none left) gets `{}` as the PHEV in real-responses did.
    """
    position = status.get("position") or {}
    lat, lon, range_km = position.get("lat"), position.get("lon"), status.get("remainingRangeElectric")
    if lat is None or lon is None or not range_km:  # no reach to draw: as real cars, an empty map
        return {"rangemap": {}}
    phase = zlib.crc32(vin.encode()) % 360 * math.pi / 180
    return {
        "rangemap": {
            "center": {"lat": lat, "lon": lon},
            "quality": "AVERAGE",
            "rangemaps": [
                {"type": "ECO_PRO_PLUS", "polyline": _polygon(lat, lon, 0.8 * range_km, phase)},
                {"type": "COMFORT", "polyline": _polygon(lat, lon, 0.65 * range_km, phase)},
            ],
        }
    }


def _polygon(lat: float, lon: float, radius_km: float, phase: float) -> list[dict[str, float]]:
    points = []
    for i in range(RANGE_MAP_POINTS - 1):
        angle = 2 * math.pi * i / (RANGE_MAP_POINTS - 1)
        reach = radius_km * (1 + 0.12 * math.sin(3 * angle + phase) + 0.05 * math.cos(7 * angle + phase))
        points.append(
            {
                "lat": round(lat + reach * math.cos(angle) / 111.32, 10),
                "lon": round(lon + reach * math.sin(angle) / (111.32 * math.cos(math.radians(lat))), 10),
            }
        )
    points.append(dict(points[0]))
    return points
