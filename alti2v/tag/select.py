"""From one image's probabilities to the tags a user asked for, the same for every output format.

    settings = TagSettings(spaces=True, exclude=frozenset({"solo"}), max_tags=20)
    tags = select_tags(probabilities, kept_mask, vocabulary, settings)  # [Tag(name, prob, ...)]

Order of work: the threshold mask picks tags; the rating is placed (or dropped); `--exclude`,
`--include-only` and `--replace` apply (each matching either spelling, `long_hair` or `long hair`);
tags are ranked by probability, characters moved first and the list capped at `--top-k`, so the
cap keeps the most probable tags, and then sorted as `--sort` asks; the `--always-first` tags go
in front; last the spelling (`--spaces`, `--escape-parens`) is applied to the names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alti2v import defaults
from alti2v.data.vocabulary import category_of

# Danbooru's kaomoji tags keep their underscores under --spaces: "^_^" is a face, "^ ^" is not.
# The list sd-scripts' and the WD taggers' users settled on.
KAOMOJI = frozenset(
    ("0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9",
     ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||")
)  # fmt: skip


@dataclass(frozen=True)
class Tag:
    name: str  # as it will be written (spelling applied)
    prob: float  # 1.0 for --always-first tags, which the model did not predict
    category: str


@dataclass(frozen=True)
class Vocabulary:
    """The model's tags with their categories (from model.json; "unknown" where absent)."""

    tags: list[str]
    categories: list[str]

    @classmethod
    def from_model(cls, tags: list[str], recorded: dict[str, str]) -> Vocabulary:
        return cls(tags, [category_of(tag, recorded) for tag in tags])


@dataclass(frozen=True)
class TagSettings:
    spaces: bool = False
    escape_parens: bool = False
    exclude: frozenset[str] = frozenset()  # keys (see tag_key)
    include_only: frozenset[str] = frozenset()  # keys; empty means every tag
    replace: dict[str, str] = field(default_factory=dict)  # key -> new name
    max_tags: int = defaults.TOP_K  # 0: no cap
    sort: str = defaults.SORT
    rating: str = defaults.RATING
    character_first: bool = False
    always_first: tuple[str, ...] = ()


def tag_key(name: str) -> str:
    """One spelling for comparing tags: `Long Hair`, `long_hair` and `long\\_hair` agree, and so do
    `(cosplay)` and `\\(cosplay\\)`."""
    return name.replace("\\", "").strip().lower().replace(" ", "_")


def spell(name: str, settings: TagSettings) -> str:
    """`name` in the spelling the settings ask for (kaomoji are left alone under --spaces)."""
    if settings.spaces and name not in KAOMOJI:
        name = name.replace("_", " ")
    if settings.escape_parens:
        name = name.replace("(", "\\(").replace(")", "\\)")
    return name


def ranked(
    probabilities: np.ndarray, top: int | None = None, mask: np.ndarray | None = None
) -> np.ndarray:
    """The label indices of one probability row, most probable first (ties in vocabulary
    order): only those where `mask` is true, at most `top`."""
    indices = np.arange(len(probabilities)) if mask is None else np.flatnonzero(mask)
    return indices[np.argsort(-probabilities[indices], kind="stable")][:top]


def select_tags(
    probabilities: np.ndarray, kept: np.ndarray, vocabulary: Vocabulary, settings: TagSettings
) -> list[Tag]:
    """The tags of one image: `kept` is its row of the threshold rule's mask."""
    rating = top_rating(probabilities, vocabulary)
    # Inline, the most probable rating keeps its rank where the threshold kept it; the other
    # three never come: a caption with rating:general and rating:sensitive says neither.
    chosen = [
        (vocabulary.tags[index], float(probabilities[index]), vocabulary.categories[index])
        for index in ranked(probabilities, mask=kept)
        if vocabulary.categories[index] != "rating"
        or (settings.rating == "inline" and vocabulary.tags[index] == rating[0])
    ]
    chosen = [
        (settings.replace.get(tag_key(tag), tag), prob, category)
        for tag, prob, category in chosen
        if _wanted(tag_key(tag), settings)
    ]
    if settings.character_first:
        chosen.sort(key=lambda item: item[2] != "character")
    if settings.max_tags:
        chosen = chosen[: settings.max_tags]
    if settings.sort == "alpha":
        chosen.sort(key=lambda item: tag_key(item[0]))
        if settings.character_first:
            chosen.sort(key=lambda item: item[2] != "character")
    if rating is not None and settings.rating in ("first", "last"):
        chosen.insert(0 if settings.rating == "first" else len(chosen), rating)
    named = {tag_key(tag) for tag, _, _ in chosen}
    front = [
        (tag, 1.0, "always")
        for tag in dict.fromkeys(settings.always_first)
        if tag_key(tag) not in named
    ]
    return [Tag(spell(tag, settings), prob, category) for tag, prob, category in front + chosen]


def top_rating(probabilities: np.ndarray, vocabulary: Vocabulary) -> tuple[str, float, str] | None:
    """The most probable rating tag: ratings are one choice of four, not four tags."""
    indices = [
        index for index, category in enumerate(vocabulary.categories) if category == "rating"
    ]
    if not indices:
        return None
    best = max(indices, key=lambda index: probabilities[index])
    return vocabulary.tags[best], float(probabilities[best]), "rating"


def _wanted(key: str, settings: TagSettings) -> bool:
    if key in settings.exclude:
        return False
    return not settings.include_only or key in settings.include_only


def read_tag_list(text: str) -> list[str]:
    """Tags from an --exclude-file / --include-only file: one per line or comma-separated,
    `#` starts a comment."""
    tags = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        tags += [part.strip() for part in line.split(",") if part.strip()]
    return tags


def parse_replacement(text: str) -> tuple[str, str]:
    """`OLD=NEW` -> (key of OLD, NEW); raises ValueError when there is no `=` or a side is empty."""
    old, separator, new = text.partition("=")
    if not separator or not old.strip() or not new.strip():
        raise ValueError(f"{text!r} is not OLD=NEW")
    return tag_key(old), new.strip()
