"""An owner's account at CarData: the cars mapped to it and its containers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from bot.cardata.errors import BadResponse
from bot.cardata.models._read import _datetime, _object
from bot.values import enum_of, str_of


class MappingType(StrEnum):
    PRIMARY = "PRIMARY"
    SECONDARY = "SECONDARY"


@dataclass(frozen=True)
class VehicleMapping:
    vin: str
    mapping_type: MappingType | str | None
    mapped_since: datetime | None

    @property
    def primary(self) -> bool:
        """Only a car mapped to the owner as PRIMARY user gives data."""
        return self.mapping_type == MappingType.PRIMARY

    @classmethod
    def list_from_api(cls, body: Any) -> list[Self]:
        """The live endpoint answers a JSON array, BMW's spec one object: both are read."""
        if isinstance(body, dict):
            inner = body.get("mappings")
            items: list[Any] = inner if isinstance(inner, list) else [body]
        elif isinstance(body, list):
            items = body
        else:
            raise BadResponse("expected the vehicle mappings as a list")
        mappings = []
        for item in items:
            if isinstance(item, dict) and (vin := str_of(item, "vin")):
                mappings.append(
                    cls(
                        vin=vin,
                        mapping_type=enum_of(MappingType, str_of(item, "mappingType")),
                        mapped_since=_datetime(item.get("mappedSince")),
                    )
                )
        return mappings


@dataclass(frozen=True)
class Container:
    container_id: str
    name: str | None
    purpose: str | None
    state: str | None  # ACTIVE, or DELETED (older answers: INACTIVE)
    descriptors: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.state is None or self.state.upper() == "ACTIVE"

    @classmethod
    def from_api(cls, body: Any) -> Self:
        data = _object(body, "a container")
        container_id = str_of(data, "containerId")
        if not container_id:
            raise BadResponse("a container without containerId")
        descriptors = data.get("technicalDescriptors")
        return cls(
            container_id=container_id,
            name=str_of(data, "name"),
            purpose=str_of(data, "purpose"),
            state=str_of(data, "state"),
            descriptors=tuple(d for d in descriptors if isinstance(d, str))
            if isinstance(descriptors, list)
            else (),
        )

    @classmethod
    def list_from_api(cls, body: Any) -> list[Self]:
        """`{"containers": [...]}` or a bare array; entries without an id are skipped."""
        items = body.get("containers") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise BadResponse("expected a list of containers")
        return [
            cls.from_api(item)
            for item in items
            if isinstance(item, dict) and isinstance(item.get("containerId"), str) and item["containerId"]
        ]


def primary_vins(mappings: Iterable[VehicleMapping]) -> list[str]:
    """The cars that give data, in BMW's order, each once."""
    return list(dict.fromkeys(m.vin for m in mappings if m.primary))
