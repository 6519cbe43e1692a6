"""The contact-sheet renderer: grid size, bars coloured by verdict, unreadable images survive."""

from __future__ import annotations

import numpy as np
from PIL import Image

from alti2v.tag import sheet
from alti2v.tag.sheet import SheetCell, SheetLine, render_sheet


def test_sheet_size_bars_and_an_unreadable_image(tmp_path):
    Image.new("RGB", (300, 200), (0, 0, 255)).save(tmp_path / "blue.png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    cells = [
        SheetCell(tmp_path / "blue.png", "blue.png", [SheetLine("right", 1.0, verdict=True)]),
        SheetCell(tmp_path / "broken.jpg", "broken.jpg", [SheetLine("wrong", 1.0, verdict=False)]),
        SheetCell(np.full((10, 20, 3), 255, np.uint8), "array", [SheetLine("plain")]),
    ]
    out = render_sheet(cells, tmp_path / "sub" / "sheet.png", columns=2, thumb=64)
    assert out == tmp_path / "sub" / "sheet.png"
    assert [path.name for path in out.parent.iterdir()] == ["sheet.png"]  # no temporary left
    with Image.open(out) as image:
        pixels = np.asarray(image.convert("RGB"))
    cell_width = 64 + 2 * sheet.PADDING
    cell_height = 64 + sheet.TITLE_HEIGHT + sheet.LINE_HEIGHT + 2 * sheet.PADDING
    assert pixels.shape == (2 * cell_height + sheet.PADDING, 2 * cell_width + sheet.PADDING, 3)
    colours = {tuple(pixel) for pixel in pixels.reshape(-1, 3)}
    assert (0, 0, 255) in colours  # the image itself
    assert sheet.BAR_COLOURS[True] in colours and sheet.BAR_COLOURS[False] in colours
