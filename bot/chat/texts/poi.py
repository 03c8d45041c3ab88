"""Sending a place to the car."""

from __future__ import annotations

from html import escape

from bot.bmw.models import (
    Poi,
)
from bot.chat.i18n import Msg
from bot.chat.texts.formatting import car_label, joined
from bot.store import StoredVehicle

# Sending a place to the car
POI_OFFER = Msg("Send it to your car's navigation?")
PLACE_UNNAMED = Msg("📍 <b>Shared location</b>")
POI_NO_CAR = Msg("None of your cars can receive places from me.")
POI_UNSUPPORTED = Msg("{car} cannot receive places from me.")
POI_SENDING = Msg("Sending…")
POI_SENT = Msg("📍 Sent to {car}'s navigation.")
SEND_TO = Msg("🚗 Send to {car}")


def place(poi: Poi) -> str:
    lines = [f"📍 <b>{escape(poi.name)}</b>" if poi.name else PLACE_UNNAMED]
    if poi.street:
        lines.append(escape(poi.street))
    lines.append(f"{poi.lat:.5f}, {poi.lon:.5f}")
    return joined([*lines, "", POI_OFFER])


def send_to(car: StoredVehicle) -> str:
    return SEND_TO.format(car=car_label(car))
