"""Backgrounds, each drawing itself and returning its tags, and the untagged or rating marks.

`BACKGROUNDS` maps a background name of `BACKGROUND_WEIGHTS` to its drawer; `draw_distractors`
adds untagged shapes and `draw_hearts` the floating hearts that rate a post "e".
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from synthetic.world import FLAT_BACKGROUND_COLOURS, WHITE, Colour, shade, vary


def _vertical_gradient(size: tuple[int, int], top: Colour, bottom: Colour) -> Image.Image:
    ramp = np.linspace(0.0, 1.0, size[1])[:, None, None]
    rows = np.asarray(top) * (1 - ramp) + np.asarray(bottom) * ramp
    return Image.fromarray(rows.astype(np.uint8), "RGB").resize(size, Image.Resampling.NEAREST)


def _white_background(image: Image.Image, draw: ImageDraw.ImageDraw, rng) -> list[str]:
    draw.rectangle([0, 0, *image.size], fill=WHITE)
    return ["white_background", "simple_background"]


def _flat_colour_background(image: Image.Image, draw: ImageDraw.ImageDraw, rng) -> list[str]:
    tag = list(FLAT_BACKGROUND_COLOURS)[rng.integers(len(FLAT_BACKGROUND_COLOURS))]
    draw.rectangle([0, 0, *image.size], fill=vary(rng, FLAT_BACKGROUND_COLOURS[tag], 6))
    return [tag, "simple_background"]


def _gradient_background(image: Image.Image, draw: ImageDraw.ImageDraw, rng) -> list[str]:
    top, bottom = (tuple(int(value) for value in rng.integers(120, 256, size=3)) for _ in range(2))
    image.paste(_vertical_gradient(image.size, top, bottom))
    return ["gradient_background"]


def _day_background(image: Image.Image, draw: ImageDraw.ImageDraw, rng) -> list[str]:
    width, height = image.size
    horizon = int(height * rng.uniform(0.55, 0.75))
    sky = _vertical_gradient((width, horizon), vary(rng, (86, 150, 232), 12), (184, 218, 246))
    image.paste(sky)
    grass = vary(rng, (92, 170, 78), 14)
    draw.rectangle([0, horizon, width, height], fill=grass)
    for _ in range(int(rng.integers(8, 20))):
        x, y = rng.uniform(0, width), rng.uniform(horizon + 5, height)
        draw.line([(x - 4, y - 8), (x, y), (x + 4, y - 8)], fill=shade(grass, 0.7), width=2)
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
    image.paste(_vertical_gradient((width, horizon), (10, 14, 44), vary(rng, (44, 54, 104), 10)))
    draw.rectangle([0, horizon, width, height], fill=vary(rng, (26, 46, 42), 6))
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
    draw.rectangle([0, 0, width, floor], fill=vary(rng, (236, 222, 196), 16))
    wood = vary(rng, (150, 100, 62), 14)
    draw.rectangle([0, floor, width, height], fill=wood)
    draw.line([(0, floor), (width, floor)], fill=shade(wood, 0.5), width=max(3, height // 80))
    for y in np.linspace(floor, height, 6)[1:-1]:
        draw.line([(0, y), (width, y)], fill=shade(wood, 0.75), width=2)
    for x in np.linspace(0, width, 7)[1:-1]:
        draw.line([(width / 2 + (x - width / 2) * 0.4, floor), (x, height)], fill=shade(wood, 0.75))
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


def draw_distractors(draw: ImageDraw.ImageDraw, size: tuple[int, int], rng) -> None:
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


def draw_hearts(draw: ImageDraw.ImageDraw, size: tuple[int, int], rng) -> None:
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
        draw.polygon(points, fill=vary(rng, (240, 70, 130), 15), outline=(120, 20, 50), width=2)
