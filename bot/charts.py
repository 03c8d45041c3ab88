"""Charts as PNG pictures, drawn with Pillow: the charging history's energy per day, distance driven per day
(cars whose drives the bot records) and state of charge, and a month's km per day and kWh per week (the
monthly summary, bot/months.py).

Drawing blocks (Pillow), so the chat layer runs `history_chart` in a thread. The words on the chart come
from the caller (bot/chat/texts/history.py); numbers, dates and times are formatted here.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from PIL import Image, ImageDraw, ImageFont

# Sized for a phone: Telegram shows a photo 300-400 px wide there, so at 600 px the digits' glyphs (about
# 0.73 of the font size) are 16-21 px tall on screen, at least the message text's 15-16 px
# (tests/test_history.py and tests/test_demo.py measure it).
WIDTH = 600
_MAX_HEIGHT = 2000  # the canvas drawn on (three sections fit); the picture is cut below its last line
BACKGROUND = (255, 255, 255)
BAR_COLOUR = (28, 105, 212)  # energy bars: the i3's blue; nothing else is drawn in it
DRIVE_COLOUR = (230, 120, 20)  # distance bars: apart from the energy's at a glance, nothing else in it
LINE_COLOUR = (0, 150, 80)  # state of charge
TEXT_COLOUR = (40, 40, 40)
GRID_COLOUR = (225, 225, 225)
AXIS_COLOUR = (150, 150, 150)
_FONT_SIZE = 44
_SYSTEM_FONT = "DejaVuSans.ttf"  # Debian's fonts-dejavu-core; Pillow finds it in the system's font folders
_LINE = round(_FONT_SIZE * 1.2)  # px from one line of text to the next
_MARGIN = 16
_LEFT, _RIGHT = 100, 16  # px: room for the axes' labels on the left
_BARS_HEIGHT, _SOC_HEIGHT = 280, 160
_DAY_LABEL_EVERY = 10  # a date under every 10th bar, the newest day's always
_GAP = 10  # px at least between two value labels


@dataclass(frozen=True)
class HistoryWords:
    """The chart's words and the user's way of writing numbers, days and times."""

    energy_title: str  # above the bars
    soc_title: str  # above the state-of-charge line
    no_soc: str  # in place of the line when the last session's state of charge is unknown
    number: Callable[[float], str]  # kWh and distance on the axes and the bars, the state of charge
    day: Callable[[date], str]  # under the bars
    moment: Callable[[datetime], str]  # the last charge's start and end
    distance_title: str = ""  # above the distance bars


def history_chart(
    days: Sequence[tuple[date, float]],
    soc: Sequence[tuple[datetime, float]],
    words: HistoryWords,
    driven: Sequence[tuple[date, float]] = (),
) -> bytes:
    """Bars of kWh per day (oldest day left), then, when given, bars of the distance `driven` per day (in the
    user's unit, the same days), over a line of the state of charge (%) at the given times."""
    image = Image.new("RGB", (WIDTH, _MAX_HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font()
    y = _bars(draw, font, days, words.energy_title, words.number, words.day, _MARGIN)
    if driven:
        y = _bars(
            draw, font, driven, words.distance_title, words.number, words.day, y + _LINE, colour=DRIVE_COLOUR
        )
    y = _soc(draw, font, soc, words, y + _LINE)
    out = io.BytesIO()
    image.crop((0, 0, WIDTH, y + _MARGIN)).save(out, format="PNG", optimize=True)
    return out.getvalue()


Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def _font() -> Font:
    """DejaVu Sans where the system has it: Pillow's own font has no umlauts ("geschätzt" showed a box)."""
    try:
        return ImageFont.truetype(_SYSTEM_FONT, _FONT_SIZE)
    except OSError:
        return ImageFont.load_default(_FONT_SIZE)


def _title(draw: ImageDraw.ImageDraw, font: Font, text: str, y: float) -> float:
    """`text` from the left margin, wrapped at the picture's width: the y below it."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= WIDTH - 2 * _MARGIN:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    for line in lines:
        draw.text((_MARGIN, y), line, fill=TEXT_COLOUR, font=font)
        y += _LINE
    return y


@dataclass(frozen=True)
class MonthWords:
    """The monthly chart's titles and the user's way of writing numbers and days."""

    km_title: str  # above the distance per day (in the user's unit)
    kwh_title: str  # above the kWh per week
    number: Callable[[float], str]
    day: Callable[[date], str]


def month_chart(
    km_per_day: Sequence[tuple[date, float]], kwh_per_week: Sequence[tuple[date, float]], words: MonthWords
) -> bytes:
    """Bars of the distance per day (none when no drive was recorded) over bars of kWh per week, each week
    under its first day."""
    image = Image.new("RGB", (WIDTH, _MAX_HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font()
    y: float = _MARGIN
    if km_per_day:
        y = _bars(draw, font, km_per_day, words.km_title, words.number, words.day, y, colour=DRIVE_COLOUR)
        y += _LINE
    y = _bars(draw, font, kwh_per_week, words.kwh_title, words.number, words.day, y, label_every=1)
    out = io.BytesIO()
    image.crop((0, 0, WIDTH, y + _MARGIN)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def _bars(
    draw: ImageDraw.ImageDraw,
    font: Font,
    days: Sequence[tuple[date, float]],
    title: str,
    number: Callable[[float], str],
    day_label: Callable[[date], str],
    y: float,
    *,
    colour: tuple[int, int, int] = BAR_COLOUR,
    label_every: int = _DAY_LABEL_EVERY,
) -> float:
    """The title and the bars in `colour` from `y` down, each bar labelled with its value, a date under every
    `label_every`th: the y below the dates."""
    top_y = _title(draw, font, title, y) + _LINE  # a line for the highest bar's label
    bottom = top_y + _BARS_HEIGHT
    top = _nice_ceiling(max((value for _, value in days), default=0.0))
    # One grid line at the axis' top (0 is the axis): each bar says its own value.
    draw.line((_LEFT, top_y, WIDTH - _RIGHT, top_y), fill=GRID_COLOUR)
    draw.text((_LEFT - 8, top_y), number(top), fill=TEXT_COLOUR, font=font, anchor="rm")
    slot = (WIDTH - _RIGHT - _LEFT) / max(len(days), 1)
    middles = [_LEFT + (index + 0.5) * slot for index in range(len(days))]
    tops = [bottom - max(1.0, _BARS_HEIGHT * value / top) if value > 0 else bottom for _, value in days]
    for middle, (_, value), bar_top in zip(middles, days, tops, strict=True):
        if value > 0:
            draw.rectangle((middle - slot * 0.35, bar_top, middle + slot * 0.35, bottom), fill=colour)
    # Labels right to left, the newest first: one that would touch the last one drawn is left out.
    values_from = dates_from = math.inf  # the left edge of the last label drawn in each row
    for index in range(len(days) - 1, -1, -1):
        day, value = days[index]
        if value > 0:
            label = number(value)
            half = draw.textlength(label, font=font) / 2
            x = min(middles[index], WIDTH - _RIGHT - half)
            if x + half + _GAP <= values_from:
                # Above every bar it spans, so no neighbour's bar runs through it.
                under = [t for m, t in zip(middles, tops, strict=True) if abs(m - x) <= half + slot / 2]
                draw.text((x, min(under) - 6), label, fill=TEXT_COLOUR, font=font, anchor="mb")
                values_from = x - half
        if (len(days) - 1 - index) % label_every == 0:
            label = day_label(day)
            half = draw.textlength(label, font=font) / 2
            x = min(max(middles[index], half + 4), WIDTH - half - 4)  # inside the picture
            if x + half + _GAP <= dates_from:
                draw.text((x, bottom + 10), label, fill=TEXT_COLOUR, font=font, anchor="mt")
                dates_from = x - half
    draw.line((_LEFT, bottom, WIDTH - _RIGHT, bottom), fill=AXIS_COLOUR)
    return bottom + 10 + _LINE


def _soc(
    draw: ImageDraw.ImageDraw,
    font: Font,
    points: Sequence[tuple[datetime, float]],
    words: HistoryWords,
    y: float,
) -> float:
    """The title and the state of charge over the last charge from `y` down: the y below its last line."""
    top = _title(draw, font, words.soc_title, y) + _LINE  # a line for the values over the points
    bottom = top + _SOC_HEIGHT
    for line_y in (top, bottom):  # 100 % and 0 %; the points carry their values
        draw.line((_MARGIN, line_y, WIDTH - _MARGIN, line_y), fill=GRID_COLOUR)
    if len(points) < 2:
        return _title(draw, font, words.no_soc, top + _SOC_HEIGHT / 3)
    first, last = points[0][0].timestamp(), points[-1][0].timestamp()
    span = max(last - first, 1.0)
    left, inner = _MARGIN + 60, WIDTH - 2 * _MARGIN - 120  # room for the end values inside the frame
    xy = [
        (left + inner * (moment.timestamp() - first) / span, bottom - _SOC_HEIGHT * min(100.0, soc) / 100)
        for moment, soc in points
    ]
    draw.line(xy, fill=LINE_COLOUR, width=4)
    for x, point_y in (xy[0], xy[-1]):
        draw.ellipse((x - 6, point_y - 6, x + 6, point_y + 6), fill=LINE_COLOUR)
    for (x, point_y), (_, soc) in ((xy[0], points[0]), (xy[-1], points[-1])):
        draw.text(
            (x, point_y - 10), f"{words.number(min(100.0, soc))} %", fill=TEXT_COLOUR, font=font, anchor="mb"
        )
    # Start under the left end, end under the right end; on a line of its own when both do not fit.
    start, end = words.moment(points[0][0]), words.moment(points[-1][0])
    y = bottom + 10
    draw.text((_MARGIN, y), start, fill=TEXT_COLOUR, font=font)
    fits = (
        draw.textlength(start, font=font) + draw.textlength(end, font=font) + 2 * _GAP <= WIDTH - 2 * _MARGIN
    )
    if not fits:
        y += _LINE
    draw.text((WIDTH - _MARGIN, y), end, fill=TEXT_COLOUR, font=font, anchor="ra")
    return y + _LINE


def _nice_ceiling(value: float) -> float:
    """The axis' top: 1, 2, 2.5 or 5 times a power of ten, at least `value` (and at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)
