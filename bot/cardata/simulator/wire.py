"""What the simulated CarData service says on the wire: its error answers, its timestamps, a stream message
and a line of the request log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class RestError(Exception):
    """A REST answer: HTTP `status` with `{"exveErrorId", "exveErrorMsg", "exveNote"}`."""

    def __init__(self, status: int, error_id: str, message: str, note: str = "") -> None:
        super().__init__(message)
        self.status, self.error_id, self.message, self.note = status, error_id, message, note

    def body(self) -> dict[str, str]:
        return {"exveErrorId": self.error_id, "exveErrorMsg": self.message, "exveNote": self.note}


class OAuthError(Exception):
    """An OAuth answer: HTTP `status` (400 unless said) with `{"error", "error_description"}`.

    The device flow's answers carry the status of BMW's device-flow spec v1.6: `authorization_pending` and
    `access_denied` 403, `expired_token` 401, `slow_down` 400.
    """

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def iso(t: float) -> str:
    """Epoch seconds as CarData's ISO timestamps, e.g. "2025-10-05T12:34:56.000Z"."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t * 1000) % 1000:03d}Z"


def iso_seconds(t: float) -> str:
    """Epoch seconds as a stream value's timestamp: whole seconds, e.g. "2025-10-01T10:12:39Z"."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """An ISO timestamp (a trailing Z allowed) or epoch seconds, as epoch seconds; ValueError otherwise."""
    try:
        return float(text)
    except ValueError:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@dataclass
class StreamMessage:
    """One stream message: MQTT topic `{gcid}/{vin}`, one key, BMW's payload shape (inside it `topic` is the
    VIN alone, `entityId` the gcid, no `unit` where the key has none, the value's time in whole seconds)."""

    gcid: str
    vin: str
    key: str
    value: str
    unit: str | None
    time: float

    @property
    def topic(self) -> str:
        return f"{self.gcid}/{self.vin}"

    def payload(self) -> dict[str, Any]:
        entry = {"timestamp": iso_seconds(self.time), "value": self.value}
        if self.unit is not None:
            entry["unit"] = self.unit
        return {
            "vin": self.vin,
            "entityId": self.gcid,
            "topic": self.vin,
            "timestamp": iso(self.time),
            "data": {self.key: entry},
        }


@dataclass
class RequestRecord:
    time: float
    method: str  # CONNECT for a stream connection attempt, SUBSCRIBE for its subscription
    path: str  # "mqtt" for the stream
    query: dict[str, str]
    form: dict[str, str]
    gcid: str | None
    # HTTP status; for CONNECT the CONNACK code (0 accepted, 3 over the per-IP limit, 4 bad token, 5 not
    # authorised), for SUBSCRIBE the SUBACK code (0 granted, 0x80 refused)
    status: int
