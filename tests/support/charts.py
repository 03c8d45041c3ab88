"""Measuring the history chart's words as a phone shows them."""

from __future__ import annotations

import io

from PIL import Image

from bot.charts import BAR_COLOUR

# A photo in a Telegram bubble on a phone (the demo's chat page at 400 px wide shows it 300 px wide;
# Telegram's apps about 400): its words must be as tall there as the message text, 15 px (the page's;
# Telegram's 15-16).
PHONE_PHOTO_PX, MESSAGE_TEXT_PX = 300, 15


def ink_height_below_the_bars(png: bytes) -> int:
    """The height of the date labels' glyphs under the bars: the rows of dark (text) pixels after the axis."""
    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
    pixels = rgb.load()
    width, height = rgb.size
    bar_rows = [y for y in range(height) if any(pixels[x, y] == BAR_COLOUR for x in range(width))]
    dark = [y for y in range(bar_rows[-1] + 1, height) if any(max(pixels[x, y]) < 110 for x in range(width))]
    run = [dark[0]]
    for y in dark[1:]:
        if y != run[-1] + 1:
            break
        run.append(y)
    return len(run)
