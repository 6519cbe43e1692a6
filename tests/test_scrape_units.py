"""The scraper's pure decisions, on the real API answers in the fixtures."""

from __future__ import annotations

import email.utils
import time

import pytest
from danbooru_server import load_fixture, make_image

from alti2v.scrape.danbooru import answer_rating_scheme, candidate_from_api, choose_image
from alti2v.scrape.http import host_allowed, retry_after_seconds
from alti2v.scrape.importer import split_rating
from alti2v.scrape.posts import image_extension, skip_reason

SITE = "https://danbooru.donmai.us"


def test_rating_scheme_is_recognised_from_the_answer():
    current, legacy = load_fixture("posts_2023.json"), load_fixture("posts_2020.json")

    assert answer_rating_scheme(current, "auto") == "current"
    assert answer_rating_scheme(legacy, "auto") == "legacy"
    assert answer_rating_scheme(legacy, "current") == "current"
    # Today's answer with only s/q/e posts: recent updated_at keeps it current.
    sensitive_only = [post for post in current if post["rating"] != "g"]
    assert answer_rating_scheme(sensitive_only, "auto") == "current"


def test_legacy_safe_becomes_general_and_keeps_the_raw_letter():
    post = load_fixture("posts_2020.json")[0]

    candidate = candidate_from_api(post, "sample", "legacy", SITE)

    assert candidate.metadata["rating"] == "g" and candidate.metadata["rating_raw"] == "s"
    assert candidate.tags == post["tag_string"].split()


def test_variant_choice_on_real_posts():
    post = load_fixture("post_2023.json")

    assert choose_image(post, "sample") == (post["large_file_url"], False)
    assert choose_image(post, "original") == (post["file_url"], True)
    # No media_asset in this answer: the sizes fall back to the sample.
    assert choose_image(post, "360x360") == (post["large_file_url"], False)
    variants = [{"type": "720x720", "url": "https://cdn.donmai.us/720x720/a.webp"}]
    assert choose_image({**post, "media_asset": {"variants": variants}}, "360x360") == (
        "https://cdn.donmai.us/720x720/a.webp",
        False,
    )
    small = {**post, "large_file_url": post["file_url"]}  # no sample: it is the original
    assert choose_image(small, "sample") == (post["file_url"], True)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({}, None),
        ({"file_url": None, "large_file_url": None, "md5": None}, "no_file"),
        ({"is_deleted": True}, "deleted"),
        ({"file_ext": "zip"}, "not_image"),
        ({"file_ext": "../../x"}, "unsupported_type"),
    ],
)
def test_skip_rules(change, reason):
    post = {**load_fixture("post_2023.json"), **change}

    candidate = candidate_from_api(post, "sample", "current", SITE)

    assert skip_reason(candidate, include_deleted=False) == reason


def test_bad_ids_are_skipped():
    post = load_fixture("post_2023.json")

    for bad in ("6148688", -1, True, None):
        assert candidate_from_api({**post, "id": bad}, "sample", "current", SITE) == "bad_id"


def test_host_allow_list():
    patterns = ("danbooru.donmai.us", "*.donmai.us")

    assert host_allowed("cdn.donmai.us", patterns)
    assert host_allowed("DANBOORU.donmai.us.", patterns)
    assert not host_allowed("donmai.us.evil.com", patterns)
    assert not host_allowed("evil-donmai.us", patterns)


def test_retry_after_in_seconds_or_as_a_date():
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)

    assert retry_after_seconds("7") == 7
    assert 25 <= retry_after_seconds(soon) <= 31
    assert retry_after_seconds("-3") == 0
    assert retry_after_seconds("whenever") is None
    assert retry_after_seconds(None) is None


def test_image_extension_comes_from_the_decoded_format():
    jpeg = make_image(1, "JPEG")

    assert image_extension(jpeg, full_check=True) == ".jpg"
    assert image_extension(make_image(1, "WEBP"), full_check=True) == ".webp"
    assert image_extension(jpeg[: len(jpeg) // 2], full_check=True) is None
    assert image_extension(b"#!/bin/sh\nrm -rf /\n", full_check=False) is None


def test_rating_tags_of_training_sets():
    assert split_rating(["1girl", "rating:safe", "solo"]) == (["1girl", "solo"], "g", "safe")
    assert split_rating(["rating:explicit"]) == ([], "e", "explicit")
    assert split_rating(["1girl"]) == (["1girl"], None, None)
