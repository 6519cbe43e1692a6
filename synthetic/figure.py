"""Drawing one girl: a pen in head radii (`_Figure`), her parts back to front, and `place_girl`.

`place_girl` draws a `Girl` on a layer of her own, mirrors and tilts it, and pastes it into her
share of the picture's width at the height her framing asks for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from synthetic.world import EYE_COLOURS, HAIR_COLOURS, NAVY, WHITE, Colour, Girl, shade, vary


@dataclass
class _Figure:
    """A pen for one girl: coordinates are in head radii from the centre of her head."""

    draw: ImageDraw.ImageDraw
    centre_x: float
    centre_y: float
    radius: float
    girl: Girl
    hair: Colour
    outline: Colour
    line_width: int

    def at(self, x: float, y: float) -> tuple[float, float]:
        return (self.centre_x + x * self.radius, self.centre_y + y * self.radius)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [*self.at(x0, y0), *self.at(x1, y1)]

    def width(self, head_radii: float) -> int:
        return max(1, round(head_radii * self.radius))

    def polygon(self, points: list[tuple[float, float]], fill: Colour) -> None:
        self.draw.polygon(
            [self.at(x, y) for x, y in points],
            fill=fill,
            outline=self.outline,
            width=self.line_width,
        )

    def ellipse(self, box: tuple[float, float, float, float], fill: Colour, outline=True) -> None:
        self.draw.ellipse(
            self.box(*box),
            fill=fill,
            outline=self.outline if outline else None,
            width=self.line_width,
        )

    def line(self, points: list[tuple[float, float]], colour: Colour, head_radii: float) -> None:
        self.draw.line(
            [self.at(x, y) for x, y in points], fill=colour, width=self.width(head_radii)
        )


# --- the girl, part by part (behind to front) ---------------------------------------------------


def _draw_umbrella(figure: _Figure) -> None:
    canopy = figure.girl.accent_colour
    figure.line([(0.6, -3.9), (1.3, 3.0)], (90, 70, 60), 0.09)
    figure.draw.pieslice(
        figure.box(-1.4, -3.9, 2.6, 0.1),
        180,
        360,
        fill=canopy,
        outline=figure.outline,
        width=figure.line_width,
    )
    for angle in (210, 240, 270, 300, 330):
        radians = math.radians(angle)
        end = (0.6 + 2.0 * math.cos(radians), -1.9 + 2.0 * math.sin(radians))
        figure.line([(0.6, -1.9), end], shade(canopy, 0.6), 0.05)


def _draw_back_hair(figure: _Figure) -> None:
    hair = figure.hair
    style = figure.girl.hairstyle
    if style == "long_hair":
        figure.draw.rounded_rectangle(
            figure.box(-1.25, -1.25, 1.25, 3.4),
            radius=figure.radius,
            fill=hair,
            outline=figure.outline,
            width=figure.line_width,
        )
        for x in (-0.8, -0.35, 0.35, 0.8):
            figure.line([(x, 1.2), (x * 1.1, 3.2)], shade(hair, 0.7), 0.05)
        return
    figure.ellipse((-1.22, -1.3, 1.22, 1.05), hair)
    if style == "twintails":
        for side in (-1, 1):
            figure.ellipse((side * 1.05 - 0.5, -0.65, side * 1.05 + 0.5, 3.2), hair)
    elif style == "ponytail":
        figure.ellipse((0.85, -1.1, 1.85, 2.9), hair)


def _draw_legs(figure: _Figure, top: float) -> None:
    girl = figure.girl
    for side in (-1, 1):
        figure.line([(side * 0.33, top), (side * 0.38, 5.9)], girl.skin, 0.3)
        if girl.thighhighs:
            figure.line([(side * 0.34, top + 0.5), (side * 0.38, 5.9)], (30, 28, 40), 0.32)
        figure.ellipse((side * 0.4 - 0.26, 5.82, side * 0.4 + 0.26, 6.12), (70, 45, 35))


def _draw_arms(figure: _Figure, sleeve: Colour | None) -> None:
    skin = figure.girl.skin
    for side in (-1, 1):
        figure.line([(side * 0.7, 1.4), (side * 1.3, 3.0)], skin, 0.3)
        if sleeve is not None:
            figure.line([(side * 0.7, 1.4), (side * 1.0, 2.25)], sleeve, 0.42)
        figure.ellipse((side * 1.3 - 0.17, 2.85, side * 1.3 + 0.17, 3.19), skin)


def _bare_torso(figure: _Figure) -> None:
    torso = [(-0.72, 1.3), (0.72, 1.3), (0.5, 2.5), (0.72, 3.3), (0.6, 3.6)]
    torso += [(-0.6, 3.6), (-0.72, 3.3), (-0.5, 2.5)]
    _draw_legs(figure, 3.4)
    figure.polygon(torso, figure.girl.skin)
    _draw_arms(figure, None)


def _draw_dress(figure: _Figure) -> None:
    colour = figure.girl.outfit_colour
    _draw_legs(figure, 4.0)
    figure.polygon(
        [(-0.72, 1.3), (0.72, 1.3), (0.5, 2.4), (1.4, 4.25), (-1.4, 4.25), (-0.5, 2.4)], colour
    )
    figure.line([(-0.52, 2.4), (0.52, 2.4)], figure.girl.accent_colour, 0.14)
    _draw_arms(figure, colour)


def _draw_school_uniform(figure: _Figure) -> None:
    _draw_legs(figure, 3.8)
    figure.polygon([(-0.55, 2.5), (0.55, 2.5), (1.25, 3.95), (-1.25, 3.95)], NAVY)
    for x in (-0.6, -0.2, 0.2, 0.6):
        figure.line([(x * 0.6, 2.55), (x, 3.9)], shade(NAVY, 0.6), 0.04)
    figure.polygon([(-0.72, 1.3), (0.72, 1.3), (0.62, 2.6), (-0.62, 2.6)], WHITE)
    collar = [(-0.72, 1.3), (-0.3, 1.3), (0.0, 1.85), (0.3, 1.3), (0.72, 1.3), (0.76, 1.7)]
    figure.polygon([*collar, (0.0, 2.2), (-0.76, 1.7)], NAVY)
    figure.polygon([(-0.17, 1.9), (0.17, 1.9), (0.0, 2.3)], (214, 40, 56))
    _draw_arms(figure, WHITE)


def _draw_swimsuit(figure: _Figure) -> None:
    _bare_torso(figure)
    suit = [(-0.55, 1.75), (0.55, 1.75), (0.48, 2.5), (0.7, 3.3), (0.25, 3.6), (-0.25, 3.6)]
    figure.polygon([*suit, (-0.7, 3.3), (-0.48, 2.5)], figure.girl.outfit_colour)
    for side in (-1, 1):
        figure.line([(side * 0.45, 1.78), (side * 0.55, 1.32)], figure.girl.outfit_colour, 0.1)


def _draw_bikini(figure: _Figure) -> None:
    _bare_torso(figure)
    colour = figure.girl.outfit_colour
    for side in (-1, 1):
        figure.ellipse((side * 0.28 - 0.24, 1.8, side * 0.28 + 0.24, 2.15), colour)
    figure.polygon([(-0.7, 3.25), (0.7, 3.25), (0.2, 3.6), (-0.2, 3.6)], colour)


OUTFIT_DRAWERS: dict[str, Callable[[_Figure], None]] = {
    "dress": _draw_dress,
    "school_uniform": _draw_school_uniform,
    "swimsuit": _draw_swimsuit,
    "bikini": _draw_bikini,
}


def _draw_face(figure: _Figure) -> None:
    girl = figure.girl
    figure.line([(0.0, 0.8), (0.0, 1.45)], girl.skin, 0.42)
    figure.ellipse((-0.96, -1.05, 0.96, 1.0), girl.skin)
    iris = EYE_COLOURS[girl.eye_colour][1]
    for side in (-1, 1):
        x, y = side * 0.42, 0.18
        figure.ellipse((x - 0.27, y - 0.33, x + 0.27, y + 0.31), WHITE, outline=False)
        figure.ellipse((x - 0.21, y - 0.27, x + 0.21, y + 0.31), iris, outline=False)
        figure.ellipse((x - 0.09, y - 0.1, x + 0.09, y + 0.14), shade(iris, 0.35), outline=False)
        figure.ellipse((x - 0.15, y - 0.2, x - 0.02, y - 0.07), WHITE, outline=False)
        lash = figure.box(x - 0.3, y - 0.37, x + 0.3, y + 0.33)
        figure.draw.arc(lash, 195, 345, fill=figure.outline, width=figure.width(0.09))
        if girl.blush:
            figure.ellipse(
                (side * 0.55 - 0.2, 0.52, side * 0.55 + 0.2, 0.64), (246, 150, 160), False
            )
    if girl.expression == "smile":
        figure.draw.arc(
            figure.box(-0.25, 0.4, 0.25, 0.8),
            20,
            160,
            fill=figure.outline,
            width=figure.width(0.06),
        )
    elif girl.expression == "open_mouth":
        figure.draw.pieslice(figure.box(-0.18, 0.5, 0.18, 0.86), 0, 180, fill=(150, 40, 52))
    else:
        figure.line([(-0.09, 0.7), (0.09, 0.7)], figure.outline, 0.05)


def _draw_bangs(figure: _Figure) -> None:
    arc = [
        (1.12 * math.cos(angle), -0.15 + 1.15 * math.sin(angle))
        for angle in np.linspace(math.pi, 2 * math.pi, 12)
    ]
    fringe = []
    for index, x in enumerate(np.linspace(0.8, -0.8, 9)):
        fringe.append((x, -0.2 if index % 2 else -0.58))
    points = [(-1.12, 0.7), *arc, (1.12, 0.7), (0.86, -0.1), *fringe, (-0.86, -0.1)]
    figure.polygon(points, figure.hair)


def _draw_hat(figure: _Figure) -> None:
    colour = figure.girl.accent_colour
    figure.ellipse((-1.5, -1.02, 1.5, -0.66), colour)
    figure.draw.rounded_rectangle(
        figure.box(-0.85, -1.95, 0.85, -0.82),
        radius=0.3 * figure.radius,
        fill=colour,
        outline=figure.outline,
        width=figure.line_width,
    )
    figure.line([(-0.83, -1.0), (0.83, -1.0)], figure.girl.outfit_colour, 0.18)


def _draw_cat_ears(figure: _Figure) -> None:
    for side in (-1, 1):
        figure.polygon([(side * 0.3, -0.9), (side * 0.98, -0.55), (side * 0.86, -1.9)], figure.hair)
        figure.polygon(
            [(side * 0.5, -0.95), (side * 0.86, -0.78), (side * 0.82, -1.55)], (246, 170, 184)
        )


def _draw_halo(figure: _Figure) -> None:
    figure.draw.ellipse(
        figure.box(-0.7, -1.9, 0.7, -1.5), outline=(250, 222, 80), width=figure.width(0.13)
    )


HEADWEAR_DRAWERS: dict[str, Callable[[_Figure], None]] = {
    "none": lambda figure: None,
    "hat": _draw_hat,
    "cat_ears": _draw_cat_ears,
    "halo": _draw_halo,
}


def _draw_hair_ribbon(figure: _Figure) -> None:
    colour = (220, 40, 62)
    for side in (-1, 1):
        figure.polygon(
            [(0.95, -0.7), (0.95 + side * 0.48, -1.0), (0.95 + side * 0.48, -0.4)], colour
        )
    figure.ellipse((0.85, -0.8, 1.05, -0.6), colour)


def _draw_flower(figure: _Figure) -> None:
    petals = figure.girl.outfit_colour
    for index in range(5):
        angle = index * 2 * math.pi / 5
        x, y = -0.95 + 0.2 * math.cos(angle), -0.55 + 0.2 * math.sin(angle)
        figure.ellipse(
            (x - 0.16, y - 0.16, x + 0.16, y + 0.16), (250, 236, 244) if index % 2 else petals
        )
    figure.ellipse((-1.05, -0.65, -0.85, -0.45), (250, 210, 60))


def _draw_glasses(figure: _Figure) -> None:
    frame = (96, 36, 40)
    for side in (-1, 1):
        x, y = side * 0.42, 0.18
        figure.draw.ellipse(
            figure.box(x - 0.35, y - 0.38, x + 0.35, y + 0.38),
            outline=frame,
            width=figure.width(0.07),
        )
    figure.line([(-0.08, 0.12), (0.08, 0.12)], frame, 0.07)


def _draw_sword(figure: _Figure) -> None:
    hand_x, hand_y = 1.3, 3.0
    tip_x, tip_y = 2.6, -0.7
    figure.polygon(
        [(hand_x - 0.1, hand_y - 0.2), (hand_x + 0.1, hand_y - 0.15), (tip_x, tip_y)],
        (172, 188, 206),
    )
    figure.line(
        [(hand_x - 0.3, hand_y - 0.28), (hand_x + 0.3, hand_y - 0.07)], (212, 170, 60), 0.12
    )
    figure.line([(hand_x, hand_y), (hand_x - 0.14, hand_y + 0.45)], (96, 60, 40), 0.13)


def _draw_girl(figure: _Figure) -> None:
    """The layers of one girl, back to front; each tagged part stays in sight."""
    girl = figure.girl
    if girl.held == "umbrella":
        _draw_umbrella(figure)
    _draw_back_hair(figure)
    OUTFIT_DRAWERS[girl.outfit](figure)
    _draw_face(figure)
    _draw_bangs(figure)
    HEADWEAR_DRAWERS[girl.headwear](figure)
    if girl.hair_ribbon:
        _draw_hair_ribbon(figure)
    if girl.flower:
        _draw_flower(figure)
    if girl.glasses:
        _draw_glasses(figure)
    if girl.held == "sword":
        _draw_sword(figure)


# --- placing girls in the picture ---------------------------------------------------------------

# Where the bottom edge of the image cuts each framing, in head radii below the head centre.
FRAMING_CUTS = {"upper_body": 2.5, "cowboy_shot": 4.4, "full_body": 6.2}
# The layer a girl is drawn on, in head radii around her head centre: the umbrella tip is 3.9
# above it, the shoes 6.1 below, the sword tip and twintails 2.6 and 1.55 to the sides.
LAYER_ABOVE = 4.05
LAYER_BELOW = 6.25
LAYER_HALF_WIDTH = 3.0


def place_girl(
    image: Image.Image,
    girl: Girl,
    slot: tuple[int, int],
    framing: str,
    outline: Colour,
    rng: np.random.Generator,
) -> None:
    """Draw one girl on her own layer, tilt it and paste it into her share of the width."""
    width, height = image.size
    index, count = slot
    slot_width = width / count
    cut = FRAMING_CUTS[framing]
    # Full-body figures keep a margin under the shoes; the others are cut by the bottom edge.
    fill = 0.92 if framing == "full_body" else 0.95
    radius = min(slot_width / 2.6, width / 3.4, height * fill / (girl.top_extent() + cut))
    radius *= rng.uniform(0.85, 1.0)
    centre_x = (index + 0.5 + rng.uniform(-0.08, 0.08)) * slot_width
    # The skirt hem is 1.4 head radii wide and the tilt adds up to 0.25: the outer girls move
    # inwards (overlapping a neighbour) so that plain backgrounds keep their corners.
    margin = min(1.7 * radius, width / 2)
    centre_x = min(max(centre_x, margin), width - margin)
    bottom = height * rng.uniform(0.95, 0.99) if framing == "full_body" else height
    centre_y = bottom - cut * radius
    # Only the part above the bottom edge is drawn; the layer would be mostly cut off otherwise.
    below = min(LAYER_BELOW, (height - centre_y) / radius + 0.6)
    layer_size = (
        math.ceil(2 * LAYER_HALF_WIDTH * radius),
        math.ceil((LAYER_ABOVE + below) * radius),
    )
    layer = Image.new("RGBA", layer_size, (0, 0, 0, 0))
    figure = _Figure(
        draw=ImageDraw.Draw(layer),
        centre_x=LAYER_HALF_WIDTH * radius,
        centre_y=LAYER_ABOVE * radius,
        radius=radius,
        girl=girl,
        hair=vary(rng, HAIR_COLOURS[girl.hair_colour][1], 10),
        outline=outline,
        line_width=max(1, round(radius * rng.uniform(0.03, 0.07))),
    )
    _draw_girl(figure)
    if girl.mirrored:
        layer = layer.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    layer = layer.rotate(
        girl.tilt_degrees,
        resample=Image.Resampling.BILINEAR,
        center=(figure.centre_x, figure.centre_y + 2 * radius),
    )
    corner = (round(centre_x - figure.centre_x), round(centre_y - figure.centre_y))
    image.paste(layer, corner, layer)
