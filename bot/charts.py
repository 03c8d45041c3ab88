"""Charts as PNG pictures, drawn with Pillow: the charging history's energy per day and state of charge.

Drawing blocks (Pillow), so the chat layer runs `history_chart` in a thread. The words on the chart come
from the caller (bot/chat/texts.py); numbers, dates and times are formatted here.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 800, 600
BACKGROUND = (255, 255, 255)
BAR_COLOUR = (28, 105, 212)  # energy bars: the i3's blue; nothing else is drawn in it
LINE_COLOUR = (0, 150, 80)  # state of charge
TEXT_COLOUR = (40, 40, 40)
GRID_COLOUR = (225, 225, 225)
AXIS_COLOUR = (150, 150, 150)
_LEFT, _RIGHT = 60, 30  # px: room for the value labels on the left
_ENERGY_TOP, _ENERGY_BOTTOM = 50, 300
_SOC_TOP, _SOC_BOTTOM = 390, 540
_FONT_SIZE = 14
_DAY_LABEL_EVERY = 5


@dataclass(frozen=True)
class HistoryWords:
    """The chart's words, in the user's language."""

    energy_title: str  # above the bars
    soc_title: str  # above the state-of-charge line
    no_soc: str  # in place of the line when the last session's state of charge is unknown


def history_chart(
    days: Sequence[tuple[date, float]], soc: Sequence[tuple[datetime, float]], words: HistoryWords
) -> bytes:
    """Bars of kWh per day (oldest day left) over a line of the state of charge (%) at the given times."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(_FONT_SIZE)
    _energy(draw, font, days, words.energy_title)
    _soc(draw, font, soc, words)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def _energy(draw: ImageDraw.ImageDraw, font: Font, days: Sequence[tuple[date, float]], title: str) -> None:
    draw.text((_LEFT, _ENERGY_TOP - 35), title, fill=TEXT_COLOUR, font=font)
    top = _nice_ceiling(max((kwh for _, kwh in days), default=0.0))
    height = _ENERGY_BOTTOM - _ENERGY_TOP
    for step in range(6):
        value = top * step / 5
        y = _ENERGY_BOTTOM - height * step / 5
        draw.line((_LEFT, y, WIDTH - _RIGHT, y), fill=GRID_COLOUR)
        draw.text((_LEFT - 8, y), f"{value:g}", fill=TEXT_COLOUR, font=font, anchor="rm")
    if days:
        slot = (WIDTH - _RIGHT - _LEFT) / len(days)
        for index, (day, kwh) in enumerate(days):
            x = _LEFT + index * slot
            if kwh > 0:
                bar_top = _ENERGY_BOTTOM - max(1.0, height * kwh / top)
                draw.rectangle((x + slot * 0.15, bar_top, x + slot * 0.85, _ENERGY_BOTTOM), fill=BAR_COLOUR)
            if (len(days) - 1 - index) % _DAY_LABEL_EVERY == 0:  # the newest day always labelled
                draw.text(
                    (x + slot / 2, _ENERGY_BOTTOM + 8),
                    f"{day:%d.%m}",
                    fill=TEXT_COLOUR,
                    font=font,
                    anchor="mt",
                )
    draw.line((_LEFT, _ENERGY_BOTTOM, WIDTH - _RIGHT, _ENERGY_BOTTOM), fill=AXIS_COLOUR)


def _soc(
    draw: ImageDraw.ImageDraw, font: Font, points: Sequence[tuple[datetime, float]], words: HistoryWords
) -> None:
    draw.text((_LEFT, _SOC_TOP - 35), words.soc_title, fill=TEXT_COLOUR, font=font)
    height = _SOC_BOTTOM - _SOC_TOP
    for percent in (0, 50, 100):
        y = _SOC_BOTTOM - height * percent / 100
        draw.line((_LEFT, y, WIDTH - _RIGHT, y), fill=GRID_COLOUR)
        draw.text((_LEFT - 8, y), f"{percent} %", fill=TEXT_COLOUR, font=font, anchor="rm")
    draw.line((_LEFT, _SOC_BOTTOM, WIDTH - _RIGHT, _SOC_BOTTOM), fill=AXIS_COLOUR)
    if len(points) < 2:
        middle = ((_LEFT + WIDTH - _RIGHT) / 2, (_SOC_TOP + _SOC_BOTTOM) / 2)
        draw.text(middle, words.no_soc, fill=TEXT_COLOUR, font=font, anchor="mm")
        return
    first, last = points[0][0].timestamp(), points[-1][0].timestamp()
    span = max(last - first, 1.0)
    inner = WIDTH - _RIGHT - _LEFT - 80  # room for the end labels inside the frame
    xy = [
        (
            _LEFT + 40 + inner * (moment.timestamp() - first) / span,
            _SOC_BOTTOM - height * min(100.0, soc) / 100,
        )
        for moment, soc in points
    ]
    draw.line(xy, fill=LINE_COLOUR, width=3)
    for (x, y), (moment, soc) in ((xy[0], points[0]), (xy[-1], points[-1])):
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=LINE_COLOUR)
        draw.text((x, y - 8), f"{soc:.0f} %", fill=TEXT_COLOUR, font=font, anchor="mb")
        draw.text((x, _SOC_BOTTOM + 8), f"{moment:%d.%m %H:%M}", fill=TEXT_COLOUR, font=font, anchor="mt")


def _nice_ceiling(value: float) -> float:
    """The axis' top: 1, 2, 2.5 or 5 times a power of ten, at least `value` (and at least 1 kWh)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)
