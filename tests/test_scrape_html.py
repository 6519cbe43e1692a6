"""`--mode html`: post pages read with BeautifulSoup, walked from search pages or from an id."""

from __future__ import annotations

import json

import pytest
from danbooru_server import (
    CLONES,
    EXPECTED,
    EXPECTED_FAILED,
    EXPECTED_SKIPS,
    FAST,
    FakeDanbooru,
    build_trap_site,
    expected_summary,
    posts_on_disk,
    render_post_page,
    run_cli,
)

from alti2v.scrape.html import candidate_from_page


@pytest.fixture
def site():
    with FakeDanbooru() as server:
        build_trap_site(server)
        yield server


def scrape_html(site: FakeDanbooru, data_dir, *extra: str):
    arguments = ["--mode", "html", "--base-url", site.base_url, "--data-dir", str(data_dir)]
    return run_cli([*arguments, *FAST, *extra])


def test_html_search_pages_give_the_same_posts_as_the_api(site, tmp_path):
    result = scrape_html(site, tmp_path, "--limit", "0")

    # 1: finished, but an input failed (the trap site's corrupt post, reported)
    assert result.returncode == 1, result.stderr
    assert result.stdout == expected_summary(
        site, "html", EXPECTED, EXPECTED_SKIPS, EXPECTED_FAILED
    )
    assert set(posts_on_disk(tmp_path)) == EXPECTED
    post = site.post(6148688)
    meta = json.loads((tmp_path / "imgs" / "6148688.json").read_text())
    assert meta["rating"] == "g" and meta["md5"] == post["md5"]
    for key in ("tag_string_general", "tag_string_artist", "tag_string_meta"):
        assert meta[key] == post[key]
    assert (tmp_path / "imgs" / "6148688.txt").read_text().split() == post["tag_string"].split()
    pages = [request.query.get("page") for request in site.seen() if request.path == "/posts"]
    assert pages == [None, "b6148694", "b6148689", "b6148684", "b6148679"]
    # A post already on disk costs no page request: the repeated one is fetched once.
    post_pages = [request.path for request in site.seen("/posts/")]
    assert len(post_pages) == len(set(post_pages)) == 20


def test_html_walks_ids_down_from_start_id_and_resumes(site, tmp_path):
    first = scrape_html(site, tmp_path, "--start-id", str(CLONES[0] + 2), "--limit", "3")
    second = scrape_html(site, tmp_path, "--start-id", str(CLONES[0] + 2), "--limit", "2")

    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert first.stdout == (
        f"html: downloaded 3 posts ({sum_sizes(site, CLONES[:3])} bytes), skipped 2 (missing 2)\n"
    )
    assert set(posts_on_disk(tmp_path)) == set(CLONES[:5])
    assert [request.path for request in site.seen("/posts/")] == [
        f"/posts/{post_id}" for post_id in range(CLONES[0] + 2, CLONES[4] - 1, -1)
    ]


def test_html_id_walk_ends_after_a_long_run_of_missing_ids(tmp_path):
    with FakeDanbooru() as site:
        site.add_clones("posts_2023.json", first_id=5, count=2)
        result = scrape_html(site, tmp_path, "--start-id", "300", "--limit", "0")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("html: downloaded 0 posts (0 bytes), skipped 100 (missing 100)")


def test_html_legacy_sidebar_maps_safe_to_general(tmp_path):
    with FakeDanbooru() as site:
        site.add_fixture_posts("posts_2020.json")
        site.behaviour.legacy_html = True
        result = scrape_html(site, tmp_path, "--limit", "2")

    assert result.returncode == 0, result.stderr
    for post_id in posts_on_disk(tmp_path):
        meta = json.loads((tmp_path / "imgs" / f"{post_id}.json").read_text())
        assert (meta["rating"], meta["rating_raw"], meta["rating_scheme"]) == ("g", "s", "legacy")


def test_post_page_of_todays_danbooru_markup():
    """Today's Danbooru: class="image-container", no data-md5 (taken from the file name)."""
    md5 = "dc123eec97d06c3aa9cd53d65a2c7abf"
    page = (
        '<section class="image-container note-container blacklisted" data-id="6148688" '
        'data-tags="1girl solo" data-rating="s" data-flags="" data-file-ext="jpg" '
        f'data-file-url="https://cdn.donmai.us/original/dc/12/{md5}.jpg" '
        f'data-large-file-url="https://cdn.donmai.us/sample/dc/12/sample-{md5}.jpg"></section>'
        '<ul><li id="post-info-rating">Rating: Sensitive</li></ul>'
    )

    candidate = candidate_from_page(page, 6148688, "sample", "auto", "https://danbooru.donmai.us")

    assert candidate.md5 == md5 and not candidate.image_is_original
    assert candidate.image_url.endswith(f"sample-{md5}.jpg")
    assert candidate.tags == ["1girl", "solo"]
    assert candidate.metadata["rating"] == "s" and candidate.metadata["rating_scheme"] == "current"


def test_post_page_for_another_id_or_without_container_is_skipped():
    post = {"id": 7, "tag_string": "a", "rating": "g", "file_ext": "jpg"}

    assert candidate_from_page(render_post_page(post, False), 8, "sample", "auto", "") == "bad_id"
    assert candidate_from_page("<html></html>", 8, "sample", "auto", "") == "unreadable_page"


def sum_sizes(site: FakeDanbooru, ids: list[int]) -> int:
    return sum(len(site.files[site.path_of(post_id)]) for post_id in ids)
