"""Contact sheets: images in a grid, each with a title and lines of text, some with a bar.

The one renderer behind `--pred --sheet` (an image's top tags with probability bars, true tags
marked right or wrong) and `--similar --sheet` (neighbours with their similarity). Pillow only.

    cells = [SheetCell(Path("a.jpg"), "a.jpg", [SheetLine("1girl", 0.98, verdict=True)])]
    render_sheet(cells, Path("sheet.png"), columns=4, thumb=256)
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from alti2v.data.files import atomic_write_bytes
from alti2v.data.images import load_image
from alti2v.data.skips import InputError

PADDING = 12  # pixels around and between cells
LINE_HEIGHT = 20  # pixels per text line; the font is a little smaller
TITLE_HEIGHT = 24
FONT_SIZE = 13
TITLE_FONT_SIZE = 14
BACKGROUND = (246, 246, 244)
CARD = (255, 255, 255)
INK = (34, 34, 34)
MUTED = (120, 120, 120)
TRACK = (236, 236, 236)
# Bar colours by verdict: right, wrong, not judged (light enough for dark text on top).
BAR_COLOURS = {True: (150, 214, 150), False: (240, 150, 150), None: (168, 198, 232)}
MARK_COLOURS = {True: (30, 130, 50), False: (190, 40, 40)}


@dataclass(frozen=True)
class SheetLine:
    text: str
    value: float | None = None  # 0..1: draws a bar (a probability or a similarity)
    verdict: bool | None = None  # True right (green), False wrong (red), None neutral


@dataclass(frozen=True)
class SheetCell:
    image: Path | np.ndarray  # a file (decoded via alti2v.data.images) or an RGB uint8 array
    title: str
    lines: list[SheetLine]


def render_sheet(cells: list[SheetCell], out: Path, columns: int = 4, thumb: int = 256) -> Path:
    """Draw `cells` in a grid `columns` wide, each image `thumb` pixels square, to the PNG `out`
    (written atomically); return `out`. An unreadable image is drawn as a grey box saying so."""
    columns = max(1, min(columns, len(cells) or 1))
    rows = math.ceil(len(cells) / columns)
    most_lines = max((len(cell.lines) for cell in cells), default=0)
    cell_width = thumb + 2 * PADDING
    cell_height = thumb + TITLE_HEIGHT + most_lines * LINE_HEIGHT + 2 * PADDING
    sheet = Image.new(
        "RGB",
        (columns * cell_width + PADDING, max(rows, 1) * cell_height + PADDING),
        BACKGROUND,
    )
    draw = ImageDraw.Draw(sheet)
    fonts = _Fonts(FONT_SIZE, TITLE_FONT_SIZE)
    for index, cell in enumerate(cells):
        left = PADDING + (index % columns) * cell_width
        top = PADDING + (index // columns) * cell_height
        draw.rounded_rectangle(
            (left, top, left + cell_width - PADDING, top + cell_height - PADDING), 6, fill=CARD
        )
        _draw_cell(sheet, draw, fonts, cell, left + PADDING // 2, top + PADDING // 2, thumb)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=True)
    atomic_write_bytes(out, buffer.getvalue())
    return out


class _Fonts:
    def __init__(self, size: int, title_size: int):
        self.text = ImageFont.load_default(size=size)
        self.title = ImageFont.load_default(size=title_size)


def _draw_cell(sheet, draw, fonts: _Fonts, cell: SheetCell, left: int, top: int, thumb: int):
    sheet.paste(_thumbnail(cell.image, thumb, fonts.title), (left, top))
    title_top = top + thumb + 4
    draw.text((left, title_top), _fit(draw, cell.title, fonts.title, thumb), INK, fonts.title)
    line_top = top + thumb + TITLE_HEIGHT
    for line in cell.lines:
        _draw_line(draw, fonts.text, line, left, line_top, thumb)
        line_top += LINE_HEIGHT


def _draw_line(draw, font, line: SheetLine, left: int, top: int, width: int) -> None:
    bar_top, bar_bottom = top + 1, top + LINE_HEIGHT - 3
    text_left = left + 4
    right = left + width
    if line.verdict is not None:
        _draw_mark(draw, line.verdict, left + 2, top + 3)
        text_left += 16
    if line.value is not None:
        value = min(max(float(line.value), 0.0), 1.0)
        draw.rectangle((text_left - 3, bar_top, right, bar_bottom), fill=TRACK)
        bar_right = text_left - 3 + round(value * (right - text_left + 3))
        if bar_right > text_left - 3:
            draw.rectangle(
                (text_left - 3, bar_top, bar_right, bar_bottom), fill=BAR_COLOURS[line.verdict]
            )
        number = f"{value:.2f}"
        number_width = draw.textlength(number, font=font)
        draw.text((right - number_width - 3, top + 2), number, INK, font)
        room = right - number_width - 8 - text_left
    else:
        room = right - text_left
    colour = MUTED if line.value is None and line.verdict is None else INK
    draw.text((text_left, top + 2), _fit(draw, line.text, font, room), colour, font)


def _draw_mark(draw, right: bool, left: int, top: int) -> None:
    """A tick or a cross, drawn as lines: the bundled font has no such glyphs."""
    colour, size = MARK_COLOURS[right], LINE_HEIGHT - 8
    if right:
        points = [(left, top + size * 0.55), (left + size * 0.4, top + size), (left + size, top)]
        draw.line(points, fill=colour, width=2, joint="curve")
    else:
        draw.line((left + 1, top + 1, left + size - 1, top + size - 1), fill=colour, width=2)
        draw.line((left + 1, top + size - 1, left + size - 1, top + 1), fill=colour, width=2)


def _fit(draw, text: str, font, width: float) -> str:
    """`text`, shortened with an ellipsis to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _thumbnail(image: Path | np.ndarray, thumb: int, font) -> Image.Image:
    if isinstance(image, np.ndarray):
        return Image.fromarray(image.astype(np.uint8), "RGB").resize((thumb, thumb))
    try:
        # The square the model sees, at thumbnail size: what the tags were predicted from.
        return Image.fromarray(load_image(Path(image), thumb), "RGB")
    except InputError as error:
        box = Image.new("RGB", (thumb, thumb), (210, 210, 210))
        ImageDraw.Draw(box).text((8, thumb // 2 - 8), f"{error.reason} image", INK, font)
        return box
