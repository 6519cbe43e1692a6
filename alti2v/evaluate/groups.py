"""Tag groups by Danbooru's naming, so --eval and the benchmarks can say which kind of tag a
model misses: colours of hair and eyes, hair styles, backgrounds, people counts, props, characters,
ratings and the other categories; every other general tag is "other".

    tag_group("green_hair", "general")   # "hair colour"
    tag_group("2girls", "general")       # "count"
"""

from __future__ import annotations

import re

# Danbooru's colour words as they start *_hair and *_eyes tags.
COLOURS = (
    "aqua", "black", "blonde", "blue", "brown", "green", "grey", "light_blue", "light_brown",
    "light_green", "light_purple", "multicolored", "orange", "pink", "purple", "red", "silver",
    "streaked", "white", "yellow", "gradient", "two-tone",
)  # fmt: skip
COUNT = re.compile(r"^(\d\+?(girls?|boys?|others?)|solo|solo_focus|multiple_(girls|boys|others))$")
HAIR_STYLES = frozenset({
    "twintails", "ponytail", "braid", "bangs", "ahoge", "sidelocks", "bob_cut", "hair_bun",
    "side_ponytail", "twin_braids", "hair_between_eyes",
})  # fmt: skip
BACKGROUNDS = frozenset({
    "outdoors", "indoors", "sky", "blue_sky", "cloud", "night", "night_sky", "starry_sky", "moon",
    "day", "sunset", "scenery", "water", "ocean",
})  # fmt: skip
# Things worn or held, the accessories a glance names; with every holding_* tag.
PROPS = frozenset({
    "hat", "cat_ears", "animal_ears", "halo", "hair_ribbon", "hair_ornament", "hair_bow",
    "hairband", "bow", "ribbon", "flower", "hair_flower", "glasses", "sword", "weapon", "umbrella",
    "heart", "jewelry", "earrings", "necklace", "gloves", "bag", "book", "wings", "tail", "food",
    "cup",
})  # fmt: skip
# Danbooru's other categories are groups of their own; "rating:" tags are the rating.
CATEGORY_GROUPS = {"character": "character", "copyright": "copyright", "artist": "artist",
                   "meta": "meta", "rating": "rating"}  # fmt: skip
GROUPS = ("hair colour", "eye colour", "hair style", "background", "count", "props", "character",
          "copyright", "artist", "meta", "rating", "other")  # fmt: skip


def tag_group(tag: str, category: str = "general") -> str:
    """The group of `tag` (one of GROUPS), from its category and its name."""
    if tag.startswith("rating:"):
        return "rating"
    if category in CATEGORY_GROUPS:
        return CATEGORY_GROUPS[category]
    name = tag.replace(" ", "_")
    for suffix, group in (("_hair", "hair colour"), ("_eyes", "eye colour")):
        if name.endswith(suffix) and name.removesuffix(suffix) in COLOURS:
            return group
    if name.endswith("_hair") or name in HAIR_STYLES:
        return "hair style"
    if name.endswith("_background") or name in BACKGROUNDS:
        return "background"
    if COUNT.match(name):
        return "count"
    if name in PROPS or name.startswith("holding"):
        return "props"
    return "other"
