"""Tag groups: Danbooru's names and categories put each tag where --eval's per-group table and
bench/tag_groups.py look for it."""

import pytest

import synthetic
from alti2v.evaluate.groups import GROUPS, tag_group


@pytest.mark.parametrize(
    ("tag", "category", "group"),
    [
        ("green_hair", "general", "hair colour"),
        ("light_brown_hair", "general", "hair colour"),
        ("purple_eyes", "general", "eye colour"),
        ("long_hair", "general", "hair style"),
        ("twintails", "general", "hair style"),
        ("simple_background", "general", "background"),
        ("starry_sky", "general", "background"),
        ("1girl", "general", "count"),
        ("6+girls", "general", "count"),
        ("multiple_boys", "general", "count"),
        ("holding_umbrella", "general", "props"),
        ("hair_ribbon", "general", "props"),
        ("closed_eyes", "general", "other"),
        ("smile", "general", "other"),
        ("hatsune_miku", "character", "character"),
        ("kantai_collection", "copyright", "copyright"),
        ("rating:e", "general", "rating"),
        ("highres", "meta", "meta"),
        ("blue hair", "general", "hair colour"),
    ],
)
def test_tag_group(tag, category, group):
    assert tag_group(tag, category) == group


def test_every_synthetic_colour_tag_is_a_colour_group():
    groups = {tag: tag_group(tag) for tag in synthetic.ALL_TAGS}
    assert {groups[tag] for tag in synthetic.HAIR_COLOURS} == {"hair colour"}
    assert {groups[tag] for tag in synthetic.EYE_COLOURS} == {"eye colour"}
    assert set(groups.values()) <= set(GROUPS)
