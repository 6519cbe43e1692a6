"""Procedurally drawn anime-style illustrations with known tags, written as posts.

The demo, the quality benchmark and the tests need tagged images without a network. Each post is a
scene of one to four stylised girls (head, big eyes, hair, outfit, props) on a background, and its
tags and rating are read off the choices that drew it, so every tag is visible in the image. The
tags follow Danbooru spelling with a long-tailed spread (`1girl` in most posts, most tags rare).

A post depends only on (seed, post_id), so output is reproducible and a re-run skips posts whose
.txt exists: the image, then the .json, then the .txt are written atomically, and the .txt marks
a complete post.

    ids = generate(Path("data/imgs"), 800, seed=0)   # posts 1..800
    image, tags, rating = draw_post(0, 17)            # one post, in memory

    python -m synthetic --out data/imgs --count 800
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from alti2v.data.files import atomic_write_bytes, atomic_write_json, atomic_write_text

DEFAULT_SEED = 0  # selects the stream of scenes; another seed draws other posts for the same ids
DEFAULT_START_ID = 1  # id of the first post written
IMAGE_SIDE_RANGE = (256, 640)  # pixels, inclusive, drawn independently for width and height

Colour = tuple[int, int, int]

# Every tag a post can carry, in the order a tag file lists them.
ALL_TAGS = (
    "1girl",
    "solo",
    "2girls",
    "3girls",
    "4girls",
    "multiple_girls",
    "long_hair",
    "short_hair",
    "twintails",
    "ponytail",
    "blonde_hair",
    "brown_hair",
    "black_hair",
    "blue_hair",
    "pink_hair",
    "red_hair",
    "silver_hair",
    "green_hair",
    "purple_hair",
    "blue_eyes",
    "red_eyes",
    "green_eyes",
    "yellow_eyes",
    "purple_eyes",
    "smile",
    "open_mouth",
    "blush",
    "hat",
    "cat_ears",
    "halo",
    "hair_ribbon",
    "flower",
    "glasses",
    "dress",
    "school_uniform",
    "swimsuit",
    "bikini",
    "thighhighs",
    "sword",
    "umbrella",
    "holding_umbrella",
    "heart",
    "upper_body",
    "full_body",
    "white_background",
    "simple_background",
    "grey_background",
    "pink_background",
    "gradient_background",
    "transparent_background",
    "outdoors",
    "sky",
    "blue_sky",
    "cloud",
    "night",
    "starry_sky",
    "moon",
    "indoors",
    "greyscale",
    "monochrome",
)

# Probability tables: option -> relative weight. The spread is long-tailed on purpose, like
# Danbooru (compare shared/fixtures/danbooru/selected_tags.csv).
GIRL_COUNTS = {1: 0.58, 2: 0.24, 3: 0.11, 4: 0.07}
COUNT_TAGS = {
    1: ("1girl", "solo"),
    2: ("2girls", "multiple_girls"),
    3: ("3girls", "multiple_girls"),
    4: ("4girls", "multiple_girls"),
}
HAIR_COLOURS: dict[str, tuple[float, Colour]] = {
    "brown_hair": (0.22, (122, 74, 42)),
    "blonde_hair": (0.20, (246, 214, 108)),
    "black_hair": (0.18, (38, 32, 44)),
    "blue_hair": (0.10, (62, 112, 222)),
    "pink_hair": (0.09, (246, 140, 192)),
    "silver_hair": (0.07, (206, 210, 222)),
    "red_hair": (0.06, (206, 40, 46)),
    "purple_hair": (0.045, (142, 82, 192)),
    "green_hair": (0.035, (62, 172, 92)),
}
EYE_COLOURS: dict[str, tuple[float, Colour]] = {
    "blue_eyes": (0.35, (40, 92, 222)),
    "red_eyes": (0.25, (212, 30, 42)),
    "green_eyes": (0.15, (38, 162, 70)),
    "yellow_eyes": (0.13, (236, 190, 28)),
    "purple_eyes": (0.12, (152, 62, 204)),
}
# Per-girl options: name -> (relative weight, the tags it brings).
# Twintails and ponytails are drawn long, so they also carry long_hair.
HAIRSTYLES = {
    "long_hair": (0.51, ("long_hair",)),
    "short_hair": (0.27, ("short_hair",)),
    "twintails": (0.13, ("long_hair", "twintails")),
    "ponytail": (0.09, ("long_hair", "ponytail")),
}
EXPRESSIONS = {
    "smile": (0.45, ("smile",)),
    "open_mouth": (0.2, ("open_mouth",)),
    "neutral": (0.35, ()),
}
HEADWEAR = {
    "none": (0.72, ()),
    "hat": (0.14, ("hat",)),
    "cat_ears": (0.09, ("cat_ears",)),
    "halo": (0.05, ("halo",)),
}
HELD_ITEMS = {
    "none": (0.85, ()),
    "sword": (0.07, ("sword",)),
    "umbrella": (0.08, ("umbrella", "holding_umbrella")),
}
# A bikini is a swimsuit on Danbooru too (tag implication).
OUTFITS = {
    "dress": (0.6, ("dress",)),
    "school_uniform": (0.28, ("school_uniform",)),
    "swimsuit": (0.08, ("swimsuit",)),
    "bikini": (0.04, ("swimsuit", "bikini")),
}
FRAMINGS = {"upper_body": 0.2, "cowboy_shot": 0.55, "full_body": 0.25}
BACKGROUND_WEIGHTS = {
    "white": 0.27,
    "flat_colour": 0.14,
    "gradient": 0.10,
    "day": 0.20,
    "night": 0.08,
    "indoors": 0.15,
    "transparent": 0.06,
}
# How an opaque image is stored; transparent ones are always RGBA PNG.
ENCODING_WEIGHTS = {"jpeg": 0.5, "png": 0.3, "palette_png": 0.07, "webp": 0.07, "greyscale": 0.06}
BLUSH_SHARE = 0.25
HAIR_RIBBON_SHARE = 0.12
FLOWER_SHARE = 0.07
GLASSES_SHARE = 0.06
THIGHHIGHS_SHARE = 0.3  # of girls whose legs are in the picture (full_body)
HEART_SHARE = 0.03  # posts with floating hearts, the drawn mark of rating "e"
NOISE_SHARE = 0.4  # lossy-encoded posts that get sensor-like noise first
ROTATION_DEGREES = 6.0  # largest tilt of a girl, either way

# Tags a greyscale image can no longer show; Danbooru drops colour tags on greyscale posts.
COLOUR_TAGS = frozenset(HAIR_COLOURS) | frozenset(EYE_COLOURS) | {"blue_sky", "pink_background"}
FLAT_BACKGROUND_COLOURS: dict[str, Colour] = {
    "grey_background": (186, 186, 190),
    "pink_background": (250, 206, 222),
}
OUTFIT_COLOURS: tuple[Colour, ...] = (
    (70, 100, 200),
    (200, 60, 80),
    (250, 250, 250),
    (60, 150, 120),
    (240, 170, 60),
    (150, 90, 180),
    (236, 120, 160),
    (120, 190, 230),
)
SKIN_TONES: tuple[Colour, ...] = (
    (255, 230, 212),
    (252, 218, 194),
    (242, 204, 176),
    (228, 186, 156),
)
WHITE: Colour = (255, 255, 255)
NAVY: Colour = (42, 52, 96)


@dataclass
class Girl:
    """The choices that draw one character; her tags are read off these."""

    hair_colour: str
    eye_colour: str
    hairstyle: str
    expression: str
    blush: bool
    headwear: str
    hair_ribbon: bool
    flower: bool
    glasses: bool
    held: str
    outfit: str
    thighhighs: bool
    outfit_colour: Colour
    accent_colour: Colour
    skin: Colour
    mirrored: bool
    tilt_degrees: float

    def tags(self) -> list[str]:
        tags = [self.hair_colour, self.eye_colour]
        for table, option in (
            (HAIRSTYLES, self.hairstyle),
            (EXPRESSIONS, self.expression),
            (HEADWEAR, self.headwear),
            (HELD_ITEMS, self.held),
            (OUTFITS, self.outfit),
        ):
            tags += table[option][1]
        flags = {
            "blush": self.blush,
            "hair_ribbon": self.hair_ribbon,
            "flower": self.flower,
            "glasses": self.glasses,
            "thighhighs": self.thighhighs,
        }
        return tags + [tag for tag, present in flags.items() if present]

    def top_extent(self) -> float:
        """How far above the head centre she reaches, in head radii, so she can be framed."""
        if self.held == "umbrella":
            return 4.0
        return {"hat": 2.05, "cat_ears": 1.95, "halo": 1.9}.get(self.headwear, 1.4)


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


@dataclass
class _Scene:
    """A finished post before encoding."""

    image: Image.Image
    tags: list[str]
    rating: str
    extension: str
    save_options: dict


def _pick(rng: np.random.Generator, weights: dict) -> object:
    """One key of a table whose values are weights or (weight, ...) tuples."""
    options = list(weights)
    values = [weight[0] if isinstance(weight, tuple) else weight for weight in weights.values()]
    probabilities = np.asarray(values, dtype=float) / sum(values)
    return options[rng.choice(len(options), p=probabilities)]


def _vary(rng: np.random.Generator, colour: Colour, amount: int) -> Colour:
    shifted = np.asarray(colour) + rng.integers(-amount, amount + 1, size=3)
    return tuple(int(value) for value in np.clip(shifted, 0, 255))


def _shade(colour: Colour, factor: float) -> Colour:
    return tuple(int(value * factor) for value in colour)


def _random_girl(rng: np.random.Generator, framing: str) -> Girl:
    return Girl(
        hair_colour=_pick(rng, HAIR_COLOURS),
        eye_colour=_pick(rng, EYE_COLOURS),
        hairstyle=_pick(rng, HAIRSTYLES),
        expression=_pick(rng, EXPRESSIONS),
        blush=rng.random() < BLUSH_SHARE,
        headwear=_pick(rng, HEADWEAR),
        hair_ribbon=rng.random() < HAIR_RIBBON_SHARE,
        flower=rng.random() < FLOWER_SHARE,
        glasses=rng.random() < GLASSES_SHARE,
        held=_pick(rng, HELD_ITEMS),
        outfit=_pick(rng, OUTFITS),
        # Tossed for every girl, so the random stream does not depend on the framing.
        thighhighs=bool(rng.random() < THIGHHIGHS_SHARE) and framing == "full_body",
        outfit_colour=_vary(rng, OUTFIT_COLOURS[rng.integers(len(OUTFIT_COLOURS))], 12),
        accent_colour=_vary(rng, OUTFIT_COLOURS[rng.integers(len(OUTFIT_COLOURS))], 12),
        skin=SKIN_TONES[rng.integers(len(SKIN_TONES))],
        mirrored=bool(rng.random() < 0.5),
        tilt_degrees=float(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES)),
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
        figure.line([(0.6, -1.9), end], _shade(canopy, 0.6), 0.05)


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
            figure.line([(x, 1.2), (x * 1.1, 3.2)], _shade(hair, 0.7), 0.05)
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
        figure.line([(x * 0.6, 2.55), (x, 3.9)], _shade(NAVY, 0.6), 0.04)
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
        figure.ellipse((x - 0.09, y - 0.1, x + 0.09, y + 0.14), _shade(iris, 0.35), outline=False)
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


def _place_girl(
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
        hair=_vary(rng, HAIR_COLOURS[girl.hair_colour][1], 10),
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


# --- backgrounds: each draws itself and returns its tags -----------------------------------------


def _vertical_gradient(size: tuple[int, int], top: Colour, bottom: Colour) -> Image.Image:
    ramp = np.linspace(0.0, 1.0, size[1])[:, None, None]
    rows = np.asarray(top) * (1 - ramp) + np.asarray(bottom) * ramp
    return Image.fromarray(rows.astype(np.uint8), "RGB").resize(size, Image.Resampling.NEAREST)


def _white_background(image: Image.Image, draw: ImageDraw.ImageDraw, rng) -> list[str]:
    draw.rectangle([0, 0, *image.size], fill=WHITE)
    return ["white_background", "simple_background"]


def _flat_colour_background(image: Image.Image, draw: ImageDraw.ImageDraw, rng) -> list[str]:
    tag = list(FLAT_BACKGROUND_COLOURS)[rng.integers(len(FLAT_BACKGROUND_COLOURS))]
    draw.rectangle([0, 0, *image.size], fill=_vary(rng, FLAT_BACKGROUND_COLOURS[tag], 6))
    return [tag, "simple_background"]


def _gradient_background(image: Image.Image, draw: ImageDraw.ImageDraw, rng) -> list[str]:
    top, bottom = (tuple(int(value) for value in rng.integers(120, 256, size=3)) for _ in range(2))
    image.paste(_vertical_gradient(image.size, top, bottom))
    return ["gradient_background"]


def _day_background(image: Image.Image, draw: ImageDraw.ImageDraw, rng) -> list[str]:
    width, height = image.size
    horizon = int(height * rng.uniform(0.55, 0.75))
    sky = _vertical_gradient((width, horizon), _vary(rng, (86, 150, 232), 12), (184, 218, 246))
    image.paste(sky)
    grass = _vary(rng, (92, 170, 78), 14)
    draw.rectangle([0, horizon, width, height], fill=grass)
    for _ in range(int(rng.integers(8, 20))):
        x, y = rng.uniform(0, width), rng.uniform(horizon + 5, height)
        draw.line([(x - 4, y - 8), (x, y), (x + 4, y - 8)], fill=_shade(grass, 0.7), width=2)
    tags = ["outdoors", "sky", "blue_sky"]
    if rng.random() < 0.7:
        tags.append("cloud")
        for _ in range(int(rng.integers(1, 4))):
            cloud_x, cloud_y = rng.uniform(0, width), rng.uniform(0.05, 0.3) * height
            size = min(width, height) * rng.uniform(0.06, 0.1)
            for offset in (-1.2, -0.4, 0.4, 1.2):
                lift = size * (0.5 if abs(offset) < 1 else 0.0)
                box = [cloud_x + offset * size - size, cloud_y - size - lift]
                draw.ellipse([*box, box[0] + 2 * size, cloud_y + size * 0.6], fill=(250, 251, 255))
    return tags


def _night_background(image: Image.Image, draw: ImageDraw.ImageDraw, rng) -> list[str]:
    width, height = image.size
    horizon = int(height * rng.uniform(0.7, 0.85))
    image.paste(_vertical_gradient((width, horizon), (10, 14, 44), _vary(rng, (44, 54, 104), 10)))
    draw.rectangle([0, horizon, width, height], fill=_vary(rng, (26, 46, 42), 6))
    # Stars stay at least two pixels wide after the resize to 150 pixels.
    star_radius = max(2.0, min(width, height) / 110)
    for _ in range(int(rng.integers(25, 70))):
        x, y = rng.uniform(0, width), rng.uniform(0, horizon * 0.9)
        size = star_radius * rng.uniform(0.7, 1.4)
        draw.ellipse([x - size, y - size, x + size, y + size], fill=(255, 250, 214))
    tags = ["outdoors", "night", "sky", "starry_sky"]
    if rng.random() < 0.5:
        tags.append("moon")
        moon = min(width, height) * rng.uniform(0.06, 0.09)
        x, y = rng.uniform(0.1, 0.9) * width, rng.uniform(0.08, 0.25) * height
        draw.ellipse([x - moon, y - moon, x + moon, y + moon], fill=(250, 240, 180))
    return tags


def _indoors_background(image: Image.Image, draw: ImageDraw.ImageDraw, rng) -> list[str]:
    width, height = image.size
    floor = int(height * rng.uniform(0.62, 0.78))
    draw.rectangle([0, 0, width, floor], fill=_vary(rng, (236, 222, 196), 16))
    wood = _vary(rng, (150, 100, 62), 14)
    draw.rectangle([0, floor, width, height], fill=wood)
    draw.line([(0, floor), (width, floor)], fill=_shade(wood, 0.5), width=max(3, height // 80))
    for y in np.linspace(floor, height, 6)[1:-1]:
        draw.line([(0, y), (width, y)], fill=_shade(wood, 0.75), width=2)
    for x in np.linspace(0, width, 7)[1:-1]:
        draw.line(
            [(width / 2 + (x - width / 2) * 0.4, floor), (x, height)], fill=_shade(wood, 0.75)
        )
    return ["indoors"]


BACKGROUNDS: dict[
    str, Callable[[Image.Image, ImageDraw.ImageDraw, np.random.Generator], list[str]]
] = {
    "white": _white_background,
    "flat_colour": _flat_colour_background,
    "gradient": _gradient_background,
    "day": _day_background,
    "night": _night_background,
    "indoors": _indoors_background,
    "transparent": lambda image, draw, rng: ["transparent_background"],
}


def _draw_distractors(draw: ImageDraw.ImageDraw, size: tuple[int, int], rng) -> None:
    """A few untagged shapes, kept off the corners so a plain background keeps plain corners."""
    width, height = size
    for _ in range(int(rng.integers(0, 4))):
        x, y = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height
        extent = min(width, height) * rng.uniform(0.02, 0.06)
        colour = tuple(int(value) for value in rng.integers(90, 200, size=3))
        shape = int(rng.integers(3))
        if shape == 0:
            draw.rectangle([x, y, x + extent, y + extent * 0.7], fill=colour)
        elif shape == 1:
            draw.polygon([(x, y), (x + extent, y), (x + extent / 2, y - extent)], fill=colour)
        else:
            draw.line([(x, y), (x + 2 * extent, y + extent)], fill=colour, width=2)


def _draw_hearts(draw: ImageDraw.ImageDraw, size: tuple[int, int], rng) -> None:
    width, height = size
    curve = np.linspace(0, 2 * math.pi, 24)
    # The classic heart curve, about 32 units wide.
    heart_x = 16 * np.sin(curve) ** 3
    heart_y = -(
        13 * np.cos(curve) - 5 * np.cos(2 * curve) - 2 * np.cos(3 * curve) - np.cos(4 * curve)
    )
    for _ in range(int(rng.integers(3, 7))):
        x, y = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        scale = min(width, height) * rng.uniform(0.08, 0.12) / 32
        points = list(zip(x + heart_x * scale, y + heart_y * scale, strict=True))
        draw.polygon(points, fill=_vary(rng, (240, 70, 130), 15), outline=(120, 20, 50), width=2)


# --- encodings: each turns the drawn image into what is saved ------------------------------------


def _with_noise(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    if rng.random() >= NOISE_SHARE:
        return image
    pixels = np.asarray(image, dtype=np.float32)
    # One noise value per pixel, shared by the channels: grain without colour speckles.
    noise = rng.normal(0.0, rng.uniform(2.0, 5.0), size=(*pixels.shape[:2], 1))
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")


def _encode_jpeg(image: Image.Image, rng) -> tuple[Image.Image, str, dict]:
    return _with_noise(image, rng), "jpg", {"format": "JPEG", "quality": int(rng.integers(80, 96))}


def _encode_webp(image: Image.Image, rng) -> tuple[Image.Image, str, dict]:
    return _with_noise(image, rng), "webp", {"format": "WEBP", "quality": int(rng.integers(80, 96))}


def _encode_png(image: Image.Image, rng) -> tuple[Image.Image, str, dict]:
    return image, "png", {"format": "PNG"}


def _encode_palette_png(image: Image.Image, rng) -> tuple[Image.Image, str, dict]:
    colours = int(rng.integers(64, 257))
    return image.quantize(colours, method=Image.Quantize.FASTOCTREE), "png", {"format": "PNG"}


def _encode_greyscale(image: Image.Image, rng) -> tuple[Image.Image, str, dict]:
    grey = image.convert("L")
    if rng.random() < 0.5:
        return grey, "jpg", {"format": "JPEG", "quality": int(rng.integers(80, 96))}
    return grey, "png", {"format": "PNG"}


ENCODERS: dict[str, Callable[[Image.Image, np.random.Generator], tuple[Image.Image, str, dict]]] = {
    "jpeg": _encode_jpeg,
    "png": _encode_png,
    "rgba_png": _encode_png,
    "palette_png": _encode_palette_png,
    "webp": _encode_webp,
    "greyscale": _encode_greyscale,
}

# The rating follows one drawn mark, the strongest first; a post with none of them is "g".
RATING_RULES = (("heart", "e"), ("bikini", "q"), ("swimsuit", "s"))


def _compose(seed: int, post_id: int) -> _Scene:
    rng = np.random.default_rng([seed, post_id])
    low, high = IMAGE_SIDE_RANGE
    size = tuple(int(side) for side in rng.integers(low, high + 1, size=2))
    background = _pick(rng, BACKGROUND_WEIGHTS)
    transparent = background == "transparent"
    image = Image.new(
        "RGBA" if transparent else "RGB", size, (0, 0, 0, 0) if transparent else WHITE
    )
    draw = ImageDraw.Draw(image)
    tags = BACKGROUNDS[background](image, draw, rng)
    if not transparent:
        _draw_distractors(draw, size, rng)

    framing = _pick(rng, FRAMINGS)
    count = _pick(rng, GIRL_COUNTS)
    girls = [_random_girl(rng, framing) for _ in range(count)]
    outline = _vary(rng, (52, 36, 40), 16)
    for index, girl in enumerate(girls):
        _place_girl(image, girl, (index, count), framing, outline, rng)
        tags += girl.tags()
    tags += COUNT_TAGS[count]
    if framing != "cowboy_shot":
        tags.append(framing)
    if rng.random() < HEART_SHARE:
        _draw_hearts(draw, size, rng)
        tags.append("heart")

    encoding = "rgba_png" if transparent else _pick(rng, ENCODING_WEIGHTS)
    image, extension, save_options = ENCODERS[encoding](image, rng)
    if encoding == "greyscale":
        tags = [tag for tag in tags if tag not in COLOUR_TAGS] + ["greyscale", "monochrome"]
    present = set(tags)
    rating = next((rating for tag, rating in RATING_RULES if tag in present), "g")
    return _Scene(
        image, [tag for tag in ALL_TAGS if tag in present], rating, extension, save_options
    )


def draw_post(seed: int, post_id: int) -> tuple[Image.Image, list[str], str]:
    """The image (as it is saved), the tags and the rating letter of one post."""
    scene = _compose(seed, post_id)
    return scene.image, scene.tags, scene.rating


def _write_post(imgs_dir: Path, seed: int, post_id: int) -> None:
    scene = _compose(seed, post_id)
    buffer = io.BytesIO()
    scene.image.save(buffer, **scene.save_options)
    tag_string = " ".join(scene.tags)
    meta = {
        "id": post_id,
        "rating": scene.rating,
        "tag_string": tag_string,
        "tag_string_general": tag_string,
        "tag_string_character": "",
        "tag_string_copyright": "",
        "tag_string_artist": "",
        "tag_string_meta": "",
        "file_ext": scene.extension,
        "image_width": scene.image.width,
        "image_height": scene.image.height,
        "source": "synthetic",
        "synthetic_seed": seed,
    }
    # The .txt comes last: it is what marks the post complete.
    atomic_write_bytes(imgs_dir / f"{post_id}.{scene.extension}", buffer.getvalue())
    atomic_write_json(imgs_dir / f"{post_id}.json", meta)
    atomic_write_text(imgs_dir / f"{post_id}.txt", tag_string + "\n")


def generate(
    imgs_dir: Path, count: int, seed: int = DEFAULT_SEED, start_id: int = DEFAULT_START_ID
) -> list[str]:
    """Write posts start_id .. start_id + count - 1 into imgs_dir and return their ids.

    A post whose .txt exists is skipped, so an interrupted run resumes where it stopped. The
    skip trusts the file: posts written with another seed are kept as they are.
    """
    imgs_dir = Path(imgs_dir)
    post_ids = [str(post_id) for post_id in range(start_id, start_id + count)]
    for post_id in post_ids:
        if not (imgs_dir / f"{post_id}.txt").exists():
            _write_post(imgs_dir, seed, int(post_id))
    return post_ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m synthetic",
        description="Draw synthetic tagged anime-style posts (<id>.<ext>, <id>.txt, <id>.json).",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="directory the posts go into (created)"
    )
    parser.add_argument("--count", type=int, required=True, help="number of posts")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"scene stream (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--start-id",
        type=int,
        default=DEFAULT_START_ID,
        help=f"first post id (default {DEFAULT_START_ID})",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON (default: a line)"
    )
    arguments = parser.parse_args(argv)
    if arguments.count < 0:
        parser.error("--count must be 0 or more")
    if arguments.start_id < 0:
        parser.error("--start-id must be 0 or more")

    first, last = arguments.start_id, arguments.start_id + arguments.count - 1
    present = sum((arguments.out / f"{post_id}.txt").exists() for post_id in range(first, last + 1))
    started = time.monotonic()
    try:
        generate(arguments.out, arguments.count, arguments.seed, arguments.start_id)
    except OSError as error:
        print(f"error: cannot write posts to {arguments.out}: {error}", file=sys.stderr)
        return 1
    summary = {
        "out": str(arguments.out),
        "posts": arguments.count,
        "written": arguments.count - present,
        "already_there": present,
        "first_id": first,
        "last_id": last,
        "seed": arguments.seed,
        "seconds": round(time.monotonic() - started, 2),
    }
    if arguments.json:
        print(json.dumps(summary))
    else:
        print(
            f"synthetic: {summary['posts']} posts (ids {first}..{last}) in {summary['out']}: "
            f"{summary['written']} written, {summary['already_there']} already there, "
            f"seed {summary['seed']}, {summary['seconds']:.1f} s"
        )
    return 0

