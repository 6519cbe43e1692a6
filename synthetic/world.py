"""The drawn world: every tag a post can carry, how often each choice is drawn, and the colours.

A girl is a `Girl` of choices drawn by `random_girl`; her tags are read off those choices, so
the tables here are both the vocabulary and the long-tailed spread of the synthetic posts.
`pick`, `vary` and `shade` are the small random helpers the drawing modules share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def pick(rng: np.random.Generator, weights: dict) -> object:
    """One key of a table whose values are weights or (weight, ...) tuples."""
    options = list(weights)
    values = [weight[0] if isinstance(weight, tuple) else weight for weight in weights.values()]
    probabilities = np.asarray(values, dtype=float) / sum(values)
    return options[rng.choice(len(options), p=probabilities)]


def vary(rng: np.random.Generator, colour: Colour, amount: int) -> Colour:
    shifted = np.asarray(colour) + rng.integers(-amount, amount + 1, size=3)
    return tuple(int(value) for value in np.clip(shifted, 0, 255))


def shade(colour: Colour, factor: float) -> Colour:
    return tuple(int(value * factor) for value in colour)


def random_girl(rng: np.random.Generator, framing: str) -> Girl:
    return Girl(
        hair_colour=pick(rng, HAIR_COLOURS),
        eye_colour=pick(rng, EYE_COLOURS),
        hairstyle=pick(rng, HAIRSTYLES),
        expression=pick(rng, EXPRESSIONS),
        blush=rng.random() < BLUSH_SHARE,
        headwear=pick(rng, HEADWEAR),
        hair_ribbon=rng.random() < HAIR_RIBBON_SHARE,
        flower=rng.random() < FLOWER_SHARE,
        glasses=rng.random() < GLASSES_SHARE,
        held=pick(rng, HELD_ITEMS),
        outfit=pick(rng, OUTFITS),
        # Tossed for every girl, so the random stream does not depend on the framing.
        thighhighs=bool(rng.random() < THIGHHIGHS_SHARE) and framing == "full_body",
        outfit_colour=vary(rng, OUTFIT_COLOURS[rng.integers(len(OUTFIT_COLOURS))], 12),
        accent_colour=vary(rng, OUTFIT_COLOURS[rng.integers(len(OUTFIT_COLOURS))], 12),
        skin=SKIN_TONES[rng.integers(len(SKIN_TONES))],
        mirrored=bool(rng.random() < 0.5),
        tilt_degrees=float(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES)),
    )
