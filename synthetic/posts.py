"""Composing a post from (seed, post_id) and writing it as <id>.<ext>, <id>.json and <id>.txt.

`draw_post` returns one post in memory; `generate` writes a range of them and skips those whose
.txt exists, which is written last and marks a complete post.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from alti2v.data.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from synthetic.backgrounds import BACKGROUNDS, draw_distractors, draw_hearts
from synthetic.encodings import ENCODERS
from synthetic.figure import place_girl
from synthetic.world import (
    ALL_TAGS,
    BACKGROUND_WEIGHTS,
    COLOUR_TAGS,
    COUNT_TAGS,
    ENCODING_WEIGHTS,
    FRAMINGS,
    GIRL_COUNTS,
    HEART_SHARE,
    IMAGE_SIDE_RANGE,
    WHITE,
    pick,
    random_girl,
    vary,
)

DEFAULT_SEED = 0  # selects the stream of scenes; another seed draws other posts for the same ids
DEFAULT_START_ID = 1  # id of the first post written


@dataclass
class _Scene:
    """A finished post before encoding."""

    image: Image.Image
    tags: list[str]
    rating: str
    extension: str
    save_options: dict


# The rating follows one drawn mark, the strongest first; a post with none of them is "g".
RATING_RULES = (("heart", "e"), ("bikini", "q"), ("swimsuit", "s"))


def _compose(seed: int, post_id: int) -> _Scene:
    rng = np.random.default_rng([seed, post_id])
    low, high = IMAGE_SIDE_RANGE
    size = tuple(int(side) for side in rng.integers(low, high + 1, size=2))
    background = pick(rng, BACKGROUND_WEIGHTS)
    transparent = background == "transparent"
    image = Image.new(
        "RGBA" if transparent else "RGB", size, (0, 0, 0, 0) if transparent else WHITE
    )
    draw = ImageDraw.Draw(image)
    tags = BACKGROUNDS[background](image, draw, rng)
    if not transparent:
        draw_distractors(draw, size, rng)

    framing = pick(rng, FRAMINGS)
    count = pick(rng, GIRL_COUNTS)
    girls = [random_girl(rng, framing) for _ in range(count)]
    outline = vary(rng, (52, 36, 40), 16)
    for index, girl in enumerate(girls):
        place_girl(image, girl, (index, count), framing, outline, rng)
        tags += girl.tags()
    tags += COUNT_TAGS[count]
    if framing != "cowboy_shot":
        tags.append(framing)
    if rng.random() < HEART_SHARE:
        draw_hearts(draw, size, rng)
        tags.append("heart")

    encoding = "rgba_png" if transparent else pick(rng, ENCODING_WEIGHTS)
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
