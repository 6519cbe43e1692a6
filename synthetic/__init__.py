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

Test and demo data, not product: nothing in `alti2v` imports this package. Its modules:

- `world`: the tag vocabulary, the weights of every choice, the colours, `Girl`
- `figure`: drawing one girl part by part and placing her in the picture
- `backgrounds`: the backgrounds and their tags, untagged distractors, hearts
- `encodings`: how a drawn image is saved (JPEG, PNG, palette PNG, WebP, greyscale)
- `posts`: composing a post (`draw_post`) and writing posts to a folder (`generate`)
- `cli`: `python -m synthetic` (`main`); `demo`: `make demo`, the whole pipeline
"""

from synthetic.backgrounds import BACKGROUNDS
from synthetic.cli import main
from synthetic.encodings import ENCODERS
from synthetic.posts import DEFAULT_SEED, DEFAULT_START_ID, RATING_RULES, draw_post, generate
from synthetic.world import (
    ALL_TAGS,
    BACKGROUND_WEIGHTS,
    COLOUR_TAGS,
    COUNT_TAGS,
    ENCODING_WEIGHTS,
    EXPRESSIONS,
    EYE_COLOURS,
    FRAMINGS,
    GIRL_COUNTS,
    HAIR_COLOURS,
    HAIRSTYLES,
    HEADWEAR,
    HELD_ITEMS,
    IMAGE_SIDE_RANGE,
    OUTFITS,
    Girl,
)

__all__ = [
    "ALL_TAGS",
    "BACKGROUNDS",
    "BACKGROUND_WEIGHTS",
    "COLOUR_TAGS",
    "COUNT_TAGS",
    "DEFAULT_SEED",
    "DEFAULT_START_ID",
    "ENCODERS",
    "ENCODING_WEIGHTS",
    "EXPRESSIONS",
    "EYE_COLOURS",
    "FRAMINGS",
    "GIRL_COUNTS",
    "HAIRSTYLES",
    "HAIR_COLOURS",
    "HEADWEAR",
    "HELD_ITEMS",
    "IMAGE_SIDE_RANGE",
    "OUTFITS",
    "RATING_RULES",
    "Girl",
    "draw_post",
    "generate",
    "main",
]
