"""The i Remote API's documented example bodies (the contract: docs/i-remote-api.md), and where the
responses recorded from real cars are, when the shared reference folder sits beside the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Absent in a user's clone: tests that read it skip.
REAL_RESPONSES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "real-responses"


TOKEN = {
    "access_token": "RCQ1hLP4AFaUBW9BjcPUN3i4WgkwF90R",
    "token_type": "Bearer",
    "expires_in": 28800,
    "refresh_token": "7WgKmEJ2kD1ydl9Hefp01eS8qDGzKnzjeORpA6vtsoFIEanz",
    "scope": "vehicle_data remote_services",
}

VEHICLES = [
    {
        "remote360": "NOT_SUPPORTED",
        "chargingControl": "WEEKLY_PLANNER",
        "countryCode": "V1-UK",
        "hornBlow": "NOT_SUPPORTED",
        "brand": "BMW_I",
        "smartSolution": "NOT_SUPPORTED",
        "hasAlarmSystem": True,
        "climateControl": "NOT_SUPPORTED",
        "doorUnlock": "ACTIVATED",
        "rangeMap": "RANGE_POLYGON",
        "climateFunction": "AIRCONDITIONING",
        "lscType": "I_LSC_IMM",
        "hub": "HUB_ECE",
        "statisticsAvailable": True,
        "doorLock": "ACTIVATED",
        "intermodalRouting": "AVAILABLE",
        "model": "I3 +REX",
        "vehicleFinder": "ACTIVATED",
        "color": "SOLARORANGE MET. M. AKZE",
        "vin": "WAB1C23456V123456",
        "bodytype": "I01",
        "chargeNow": "NOT_SUPPORTED",
        "supportedChargingModes": ["AC_LOW", "AC_HIGH", "DC"],
        "sendPoi": "ACTIVATED",
        "yearOfConstruction": 2014,
        "climateNow": "ACTIVATED",
        "lightFlash": "ACTIVATED",
        "driveTrain": "BEV_REX",
        "licensePlate": "AB64 1BC",
        "statisticsCommunityEnabled": True,
        "colorCode": "B78",
        "onlineSearchMode": "MAP",
        "dealer": {
            "name": "BMW UK Ltd",
            "country": "GB",
            "postalCode": "GU14 0FB",
            "city": "Farnborough",
            "street": "Summit ONE",
        },
        "lastDestinations": "SUPPORTED",
    }
]

STATUS = {
    "vehicleStatus": {
        "vin": "WAB1C23456V123456",
        "mileage": 1234,
        "updateReason": "VEHICLE_SHUTDOWN_SECURED",
        "updateTime": "2015-10-30T18:45:04+0100",
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
        "remainingFuel": 8.9,
        "remainingRangeElectric": 73,
        "remainingRangeElectricMls": 45,
        "remainingRangeFuel": 126,
        "remainingRangeFuelMls": 78,
        "maxRangeElectric": 134,
        "maxRangeElectricMls": 83,
        "fuelPercent": 99,
        "maxFuel": 9,
        "connectionStatus": "DISCONNECTED",
        "chargingStatus": "INVALID",
        "chargingLevelHv": 58,
        "lastChargingEndReason": "UNKNOWN",
        "lastChargingEndResult": "FAILED",
        "position": {"lat": 51.123456, "lon": -1.2345678, "heading": 211, "status": "OK"},
        "chargingTimeRemaining": 45,
        "internalDataTimeUTC": "2015-10-30T18:47:44",
    }
}

LAST_TRIP = {
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
        "date": "2015-12-01T20:44:00+0100",
        "duration": 124,
    }
}

CHARGING_PROFILE = {
    "weeklyPlanner": {
        "climatizationEnabled": True,
        "chargingMode": "DELAYED_CHARGING",
        "chargingPreferences": "CHARGING_WINDOW",
        "timer1": {"departureTime": "07:30", "timerEnabled": True, "weekdays": ["MONDAY"]},
        "timer2": {"departureTime": "13:00", "timerEnabled": False, "weekdays": ["SATURDAY"]},
        "timer3": {"departureTime": "08:00", "timerEnabled": False, "weekdays": []},
        "overrideTimer": {"departureTime": "07:30", "timerEnabled": False, "weekdays": ["MONDAY"]},
        "preferredChargingWindow": {"enabled": True, "startTime": "05:02", "endTime": "17:31"},
    }
}

# The documented CHARGING_CONTROL `data` examples (the second, twoTimesTimer, as a profile body).
CHARGING_CONTROL_WEEKLY = {
    "weeklyPlanner": {
        "climatizationEnabled": True,
        "chargingMode": "IMMEDIATE_CHARGING",
        "chargingPreferences": "CHARGING_WINDOW",
        "timer1": {"departureTime": "12:30", "timerEnabled": True, "weekdays": []},
        "timer2": {"weekdays": []},
        "timer3": {"departureTime": "19:30", "timerEnabled": False, "weekdays": []},
        "overrideTimer": {"weekdays": []},
        "preferredChargingWindow": {"enabled": False, "startTime": "00:00", "endTime": "00:00"},
    }
}
CHARGING_CONTROL_TWO_TIMES = {
    "twoTimesTimer": {
        "climatizationEnabled": True,
        "chargingMode": "DELAYED_CHARGING",
        "chargingPreferences": "CHARGING_WINDOW",
        "timer1": {"departureTime": "12:30", "timerEnabled": True},
        "timer2": {"departureTime": "13:30", "timerEnabled": False},
        "preferredChargingWindow": {"startTime": "00:00", "endTime": "00:00"},
    }
}

DESTINATIONS = {
    "destinations": [
        {
            "lat": 51.53053283691406,
            "lon": -0.08362331241369247,
            "country": "UNITED KINGDOM",
            "city": "LONDON",
            "street": "PITFIELD STREET",
            "type": "DESTINATION",
            "createdAt": "2015-09-25T08:06:11+0200",
        }
    ]
}

ALL_TRIPS = {
    "allTrips": {
        "avgElectricConsumption": {
            "communityLow": 0,
            "communityAverage": 16.33,
            "communityHigh": 35.53,
            "userAverage": 14.76,
        },
        "avgRecuperation": {
            "communityLow": 0,
            "communityAverage": 3.76,
            "communityHigh": 14.03,
            "userAverage": 2.3,
        },
        "chargecycleRange": {
            "communityAverage": 121.58,
            "communityHigh": 200,
            "userAverage": 72.62,
            "userHigh": 135,
            "userCurrentChargeCycle": 60,
        },
        "totalElectricDistance": {
            "communityLow": 1,
            "communityAverage": 12293.65,
            "communityHigh": 77533.6,
            "userTotal": 3158.66,
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
}

# The documentation elides points with "..."; the two shown of each polyline are kept.
RANGE_MAP = {
    "rangemap": {
        "center": {"lat": 51.123456, "lon": -1.2345678},
        "quality": "AVERAGE",
        "rangemaps": [
            {
                "type": "ECO_PRO_PLUS",
                "polyline": [
                    {"lat": 51.6991281509399, "lon": -2.00423240661621},
                    {"lat": 51.6909098625183, "lon": -1.91526889801025},
                ],
            },
            {
                "type": "COMFORT",
                "polyline": [
                    {"lat": 51.7212295532227, "lon": -1.7363977432251},
                    {"lat": 51.6991496086121, "lon": -1.73077583312988},
                ],
            },
        ],
    }
}

EXECUTION_STATUS = {
    "executionStatus": {
        "serviceType": "DOOR_LOCK",
        "status": "EXECUTED",
        "eventId": "123456789012345AB1CD1234@bmw.de",
    }
}
EXECUTE_SERVICE_ANSWER = {
    "executionStatus": {
        "serviceType": "LIGHT_FLASH",
        "status": "INITIATED",
        "eventId": "123456789012345AB1CD1234@bmw.de",
    }
}

DOCUMENTED: list[Any] = [
    TOKEN,
    VEHICLES,
    STATUS,
    LAST_TRIP,
    CHARGING_PROFILE,
    CHARGING_CONTROL_WEEKLY,
    CHARGING_CONTROL_TWO_TIMES,
    DESTINATIONS,
    ALL_TRIPS,
    RANGE_MAP,
    EXECUTION_STATUS,
    EXECUTE_SERVICE_ANSWER,
]
