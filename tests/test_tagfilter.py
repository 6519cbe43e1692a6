"""Tag post-processing shared by every format: spelling, filters, order, rating, caps."""

from __future__ import annotations

import numpy as np
import pytest

from alti2v.tag.select import (
    TagSettings,
    Vocabulary,
    parse_replacement,
    read_tag_list,
    select_tags,
    spell,
    tag_key,
)

VOCABULARY = Vocabulary(
    ["long_hair", "hatsune_miku", "^_^", "rating:general", "rating:explicit", "solo", "a_(b)"],
    ["general", "character", "general", "rating", "rating", "general", "general"],
)
PROBABILITIES = np.array([0.9, 0.6, 0.7, 0.8, 0.1, 0.95, 0.5], dtype=np.float32)
EVERY_TAG = np.ones(len(VOCABULARY.tags), dtype=bool)


def names(settings: TagSettings, kept: np.ndarray = EVERY_TAG) -> list[str]:
    return [tag.name for tag in select_tags(PROBABILITIES, kept, VOCABULARY, settings)]


def test_default_ranks_every_kept_tag_by_probability_rating_inline():
    # Inline, the ratings stay one choice of four: the most probable one at its rank, never a
    # second one, even where the threshold keeps it.
    assert names(TagSettings()) == [
        "solo", "long_hair", "rating:general", "^_^", "hatsune_miku", "a_(b)",
    ]  # fmt: skip
    kept = PROBABILITIES >= 0.75
    assert names(TagSettings(), kept) == ["solo", "long_hair", "rating:general"]
    # ... and only where its threshold keeps it.
    assert names(TagSettings(), PROBABILITIES >= 0.85) == ["solo", "long_hair"]


def test_spaces_keep_kaomoji_and_escape_parens():
    settings = TagSettings(spaces=True, escape_parens=True, rating="none")
    assert names(settings) == ["solo", "long hair", "^_^", "hatsune miku", "a \\(b\\)"]
    assert spell(">_<", TagSettings(spaces=True)) == ">_<"
    assert spell("0_0", TagSettings(spaces=True)) == "0_0"


def test_exclude_include_and_replace_match_either_spelling():
    settings = TagSettings(
        exclude=frozenset({tag_key("Long Hair")}),
        replace={tag_key("hatsune miku"): "miku"},
        rating="none",
    )
    assert names(settings) == ["solo", "^_^", "miku", "a_(b)"]
    only = TagSettings(include_only=frozenset({"solo", tag_key("a \\(b\\)")}), rating="none")
    assert names(only) == ["solo", "a_(b)"]


def test_rating_first_last_none_keeps_only_the_most_likely_rating():
    assert names(TagSettings(rating="first", max_tags=2)) == ["rating:general", "solo", "long_hair"]
    assert names(TagSettings(rating="last", max_tags=2)) == ["solo", "long_hair", "rating:general"]
    assert "rating:general" not in names(TagSettings(rating="none"))
    # the rating is a choice of four: placed even when its probability is under the threshold
    assert names(TagSettings(rating="first"), PROBABILITIES >= 0.9) == [
        "rating:general", "solo", "long_hair",
    ]  # fmt: skip


def test_sort_character_first_max_tags_and_always_first():
    assert names(TagSettings(sort="alpha", rating="none")) == [
        "^_^", "a_(b)", "hatsune_miku", "long_hair", "solo",
    ]  # fmt: skip
    # The cap keeps the most probable tags; --sort alpha orders those, not the whole vocabulary.
    assert names(TagSettings(sort="alpha", rating="none", max_tags=3)) == [
        "^_^", "long_hair", "solo",
    ]  # fmt: skip
    assert names(TagSettings(sort="alpha", rating="none", max_tags=3, character_first=True)) == [
        "hatsune_miku", "long_hair", "solo",
    ]  # fmt: skip
    settings = TagSettings(character_first=True, max_tags=3, always_first=("my_oc", "solo"))
    tags = select_tags(PROBABILITIES, EVERY_TAG, VOCABULARY, settings)
    # solo is already among the tags, so only my_oc is added in front; the cap counts model tags
    assert [(tag.name, tag.category) for tag in tags] == [
        ("my_oc", "always"), ("hatsune_miku", "character"), ("solo", "general"),
        ("long_hair", "general"),
    ]  # fmt: skip


def test_tag_list_files_and_replacements():
    assert read_tag_list("solo, long hair\n# a comment\nsmile # why\n\n") == [
        "solo", "long hair", "smile",
    ]  # fmt: skip
    assert parse_replacement("Long Hair = very_long_hair") == ("long_hair", "very_long_hair")
    for bad in ("no_equals", "=x", "x="):
        with pytest.raises(ValueError):
            parse_replacement(bad)
