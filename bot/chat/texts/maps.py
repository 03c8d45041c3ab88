"""The range map and the range estimate."""

from __future__ import annotations

from html import escape

from bot.car_status import CarPosition, CarStatus
from bot.chat.i18n import Msg, tr
from bot.chat.texts.formatting import _km, _words, car_label, joined
from bot.chat.texts.status import IMPOSSIBLE_POSITION, status_ages
from bot.store import StoredVehicle

# Range map
MAP_BUTTON = Msg("🗺 Range map")
RANGE_ESTIMATE_BUTTON = Msg("🗺 Range (estimate)")
MAP_DRAWING = Msg("Drawing the range map…")
MAP_LOADING = Msg("Drawing the range map of {car}…")
MAP_UNAVAILABLE = Msg("BMW has no range map for {car} right now.")
MAP_NO_BASE = Msg("\n(The street map could not be loaded; showing the range on a plain background.)")
MODE_NAMES = {"ECO_PRO_PLUS": "ECO PRO+", "ECO_PRO": "ECO PRO", "COMFORT": "COMFORT"}
MAP_TITLE = Msg("🗺 <b>Range of {car}</b>")
MAP_LEGEND = "{colour}: {mode}"
MAP_LEGEND_REACH = "{colour}: {mode} ≈ {reach}"
MAP_THE_CAR = Msg("🔴 the car")
MAP_IMPOSSIBLE_POSITION = "📍 {where}"


def map_unavailable(car: StoredVehicle, position: CarPosition | None) -> str:
    """No range map; when the car's position is impossible too (the likely cause), that is said as well."""
    lines = [MAP_UNAVAILABLE.format(car=car_label(car))]
    if position is not None and position.impossible:
        lines.append(MAP_IMPOSSIBLE_POSITION.format(where=IMPOSSIBLE_POSITION))
    return joined(lines)


def map_caption(
    car: StoredVehicle,
    legend: tuple[tuple[str, str], ...],
    reaches: dict[str, float],
    *,
    base_map: bool,
    position: CarPosition | None = None,
) -> str:
    lines = [MAP_TITLE.format(car=car_label(car))]
    for mode, colour in legend:
        name = escape(MODE_NAMES.get(mode, _words(mode).upper()))
        if mode in reaches:
            lines.append(MAP_LEGEND_REACH.format(colour=escape(colour), mode=name, reach=_km(reaches[mode])))
        else:
            lines.append(MAP_LEGEND.format(colour=escape(colour), mode=name))
    lines.append(MAP_THE_CAR)
    if position is not None and position.impossible:
        lines.append(MAP_IMPOSSIBLE_POSITION.format(where=IMPOSSIBLE_POSITION))
    return joined(lines) + ("" if base_map else tr(MAP_NO_BASE))


# The range estimate of a car without range polylines (CarData)
ESTIMATE_UNAVAILABLE = Msg(
    "{car} has not reported its position and electric range yet, so there is no estimate to draw."
)
ESTIMATE_CAPTION = Msg(
    "🗺 <b>Estimated range of {car}</b>\n"
    "{colour} ring: about {reach} as the crow flies, from {range} of electric range "
    "(roads wind, so a rough guide: CarData sends no range map)\n"
    "🔴 the car · {ages}"
)


def estimate_caption(car: StoredVehicle, s: CarStatus, reach: float, colour: str, *, base_map: bool) -> str:
    caption = ESTIMATE_CAPTION.format(
        car=car_label(car),
        colour=escape(colour),
        reach=_km(reach),
        range=_km(s.electric_range_km or 0.0),
        ages=status_ages(s),
    )
    return caption + ("" if base_map else tr(MAP_NO_BASE))
