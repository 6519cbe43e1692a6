"""End-to-end tests of `--mode scrape` against the fake Danbooru on 127.0.0.1.

The site is `danbooru_server.build_trap_site`: real posts turned into traps, clean clones, pages
of 5 posts and one post repeated at the top of page 2.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
import requests
from danbooru_server import (
    CLONES,
    EXPECTED,
    EXPECTED_FAILED,
    EXPECTED_SKIPS,
    FAST,
    TRAPS,
    VALID_API_KEY,
    VALID_LOGIN,
    FakeDanbooru,
    build_trap_site,
    expected_summary,
    posts_on_disk,
    run_cli,
)

from alti2v import PROJECT_URL, __version__
from alti2v.data.posts import iter_posts

USER_AGENT = f"alt-i2v/{__version__} (+{PROJECT_URL})"


@pytest.fixture
def site():
    with FakeDanbooru() as server:
        build_trap_site(server)
        yield server


def scrape(site: FakeDanbooru, data_dir: Path, *extra: str, env=None):
    arguments = ["--base-url", site.base_url, "--data-dir", str(data_dir), *FAST, *extra]
    return run_cli(arguments, env=env)


def test_scrape_writes_expected_posts_and_skips_every_trap(site, tmp_path):
    result = scrape(site, tmp_path, "--limit", "0")

    # 1: finished, but an input failed (the trap site's corrupt post, reported)
    assert result.returncode == 1, result.stderr
    assert result.stdout == expected_summary(
        site, "scrape", EXPECTED, EXPECTED_SKIPS, EXPECTED_FAILED
    )
    on_disk = posts_on_disk(tmp_path)
    assert set(on_disk) == EXPECTED
    assert all(suffixes == {".jpg", ".json", ".txt"} for suffixes in on_disk.values())
    # Nothing but <id>.<allowed ext> anywhere under the data dir.
    names = {path.name for path in tmp_path.rglob("*") if path.is_file()}
    assert names - {"scrape-state.json", ".scrape.lock"} == {
        f"{post_id}{suffix}" for post_id in EXPECTED for suffix in (".jpg", ".json", ".txt")
    }
    assert not list(tmp_path.parent.glob("evil*")) and not list(tmp_path.glob("**/x"))

    post = site.post(6148688)
    assert (tmp_path / "imgs" / "6148688.txt").read_text() == post["tag_string"] + "\n"
    meta = json.loads((tmp_path / "imgs" / "6148688.json").read_text())
    assert meta["rating"] == "g" and meta["rating_raw"] == "g"
    assert meta["rating_scheme"] == "current"
    for key in ("tag_string_general", "tag_string_character", "tag_string_copyright"):
        assert meta[key] == post[key]
    assert meta["md5"] == post["md5"] and meta["source"] == post["source"]
    assert meta["file_url"] == post["file_url"] and meta["image_url"] == post["large_file_url"]
    sample = site.files[site.path_of(6148688)]
    assert (tmp_path / "imgs" / "6148688.jpg").read_bytes() == sample
    assert [item.post_id for item in iter_posts(tmp_path / "imgs")] == sorted(map(str, EXPECTED))


def test_requests_seen_by_the_server(site, tmp_path):
    scrape(site, tmp_path, "--limit", "0")

    seen = site.seen()
    assert {request.user_agent for request in seen} == {USER_AGENT}
    assert all(request.login is None for request in seen)
    pages = [request.query.get("page") for request in site.seen("/posts.json")]
    # id-descending paging only: numbered pages stop at 1000.
    assert pages == [None, "b6148694", "b6148689", "b6148684", "b6148679"]
    assert {request.query["limit"] for request in site.seen("/posts.json")} == {"200"}
    # Refused URLs are never fetched; the one cut short every time is tried 1 + 2 retries.
    assert not [request for request in seen if request.host.startswith("localhost")]
    assert not [request for request in seen if request.path.endswith("/x")]
    fetched = [request.path for request in site.file_requests()]
    assert fetched.count(site.path_of(TRAPS["cut_always"])) == 3
    assert fetched.count(site.path_of(TRAPS["cut_once"])) == 2
    assert fetched.count(site.path_of(CLONES[0])) == 2  # 503 once, then the file
    assert fetched.count(site.path_of(6148688)) == 1  # its duplicate is never fetched
    assert site.path_of(TRAPS["deleted"]) not in fetched


def test_second_run_downloads_nothing_and_resumes_from_the_top(site, tmp_path):
    scrape(site, tmp_path, "--limit", "0")
    before = len(site.file_requests())

    again = scrape(site, tmp_path, "--limit", "0")

    # 1: the cut_always trap post is retried, and fails again (reported)
    assert again.returncode == 1, again.stderr
    # Only the post whose body always arrives cut short is tried again.
    assert again.stdout == (
        "scrape: downloaded 0 posts (0 bytes), skipped 1 (corrupt 1); "
        "failed posts retried: 1, stored 0; failed posts to retry next run: 1\n"
    )
    (failed,) = EXPECTED_FAILED
    assert {request.path for request in site.file_requests()[before:]} == {site.path_of(failed)}
    state = json.loads((tmp_path / "scrape-state.json").read_text())
    (walk,) = state["walks"].values()
    assert walk == {"cursor": None, "ceiling": None, "floor": max(CLONES)}
    (record,) = state["failed"].values()
    assert record == {str(failed): {"attempts": 2, "reason": "corrupt", "given_up": False}}


def test_limit_counts_new_posts_and_the_next_run_continues(site, tmp_path):
    first = scrape(site, tmp_path, "--limit", "4")
    second = scrape(site, tmp_path, "--limit", "4")

    assert first.stdout.startswith("scrape: downloaded 4 posts")
    assert second.stdout.startswith("scrape: downloaded 4 posts")
    assert set(posts_on_disk(tmp_path)) == set(CLONES[:8])
    # The second run asked for the page after its cursor, not the first page again.
    assert [request.query.get("page") for request in site.seen("/posts.json")] == [
        None,
        "b6148695",
    ]


def test_include_deleted_and_original_variant(site, tmp_path):
    result = scrape(site, tmp_path, "--limit", "0", "--include-deleted", "--variant", "original")

    assert result.returncode == 0, result.stderr
    on_disk = posts_on_disk(tmp_path)
    # Originals are not cut short on this site, so both cut posts arrive; md5 is checked.
    assert set(on_disk) == EXPECTED | {TRAPS["deleted"], TRAPS["cut_always"]}
    for post_id in on_disk:
        post = site.post(post_id)
        extension = ".png" if post["file_ext"] == "png" else ".jpg"
        assert on_disk[post_id] == {extension, ".json", ".txt"}
        image = (tmp_path / "imgs" / f"{post_id}{extension}").read_bytes()
        assert image == site.files[site.path_of(post_id, "file_url")]


def test_original_with_wrong_md5_is_retried_then_skipped(site, tmp_path):
    site.post(CLONES[1])["md5"] = "0" * 32

    result = scrape(site, tmp_path, "--limit", "0", "--variant", "original")

    assert CLONES[1] not in posts_on_disk(tmp_path)
    assert "corrupt 1" in result.stdout
    fetched = [request.path for request in site.file_requests()]
    assert fetched.count(site.path_of(CLONES[1], "file_url")) == 2


def test_size_variants_fall_back_to_the_next_larger(site, tmp_path):
    result = scrape(site, tmp_path, "--limit", "0", "--variant", "360x360")

    # 1: finished, but an input failed (the trap site's corrupt post, reported)
    assert result.returncode == 1, result.stderr
    with_360 = json.loads((tmp_path / "imgs" / "6148688.json").read_text())
    assert with_360["image_url"].endswith(".jpg") and "/360x360/" in with_360["image_url"]
    assert with_360["image_variant"] == "360x360"
    without_360 = json.loads((tmp_path / "imgs" / "6148687.json").read_text())
    assert "/720x720/" in without_360["image_url"]
    assert (tmp_path / "imgs" / "6148687.webp").is_file()
    no_variants = json.loads((tmp_path / "imgs" / f"{CLONES[2]}.json").read_text())
    assert no_variants["image_url"] == site.post(CLONES[2])["large_file_url"]


def test_allow_host_adds_a_host_and_sends_no_credentials_there(site, tmp_path):
    env = {"DANBOORU_LOGIN": VALID_LOGIN, "DANBOORU_API_KEY": VALID_API_KEY}
    result = scrape(site, tmp_path, "--limit", "0", "--allow-host", "localhost", env=env)

    # 1: finished, but an input failed (the trap site's corrupt post, reported)
    assert result.returncode == 1, result.stderr
    assert TRAPS["foreign_host"] in posts_on_disk(tmp_path)
    foreign = [request for request in site.seen() if request.host.startswith("localhost")]
    assert len(foreign) == 1 and foreign[0].login is None
    assert {request.login for request in site.seen("/posts.json")} == {VALID_LOGIN}


def test_redirects_are_followed_only_to_allowed_hosts(site, tmp_path):
    inside, outside = CLONES[2], CLONES[3]
    site.behaviour.redirects[site.path_of(inside)] = "/moved/inside.jpg"
    site.files["/moved/inside.jpg"] = site.files[site.path_of(inside)]
    site.behaviour.redirects[site.path_of(outside)] = (
        f"http://localhost:{site.port}{site.path_of(outside)}"
    )

    result = scrape(site, tmp_path, "--limit", "0")

    on_disk = posts_on_disk(tmp_path)
    assert inside in on_disk and outside not in on_disk
    assert "refused_url 2" in result.stdout
    assert not [request for request in site.seen() if request.host.startswith("localhost")]
    assert len(site.seen("/moved/")) == 1


def test_three_tags_without_login_is_one_clear_error(site, tmp_path):
    result = scrape(site, tmp_path, "--tags", "kantai_collection 1girl solo")

    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: The site refused the search (HTTP 422: You cannot search for more than 2 tags "
        "at a time. Upgrade your account to search for more tags at once.): anonymous searches "
        "allow 2 tags, so set DANBOORU_LOGIN and DANBOORU_API_KEY or search fewer tags."
    )
    assert posts_on_disk(tmp_path) == {}


def test_three_tags_with_login_works_and_a_wrong_key_is_refused(site, tmp_path):
    good = {"DANBOORU_LOGIN": VALID_LOGIN, "DANBOORU_API_KEY": VALID_API_KEY}
    ok = scrape(site, tmp_path / "good", "--tags", "a b c", "--limit", "2", env=good)
    wrong_key = "wrong-key-0123456789"
    bad = {"DANBOORU_LOGIN": VALID_LOGIN, "DANBOORU_API_KEY": wrong_key}
    refused = scrape(site, tmp_path / "bad", "--tags", "a b c", env=bad)

    assert ok.returncode == 0, ok.stderr
    assert len(posts_on_disk(tmp_path / "good")) == 2
    assert refused.returncode == 3
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: The site rejected the login (HTTP 401: Invalid API key): check DANBOORU_LOGIN"
        )
    )
    for output in (ok.stdout, ok.stderr, refused.stdout, refused.stderr):
        assert VALID_API_KEY not in output and wrong_key not in output
    state = (tmp_path / "good" / "scrape-state.json").read_text()
    assert VALID_API_KEY not in state


def test_only_one_of_login_and_key_is_refused_before_any_request(site, tmp_path):
    result = scrape(site, tmp_path, env={"DANBOORU_LOGIN": VALID_LOGIN})

    assert result.returncode == 2
    assert "set both DANBOORU_LOGIN and DANBOORU_API_KEY" in result.stderr
    assert site.seen() == []


def test_server_that_keeps_failing_ends_the_run_with_a_clear_message(site, tmp_path):
    site.behaviour.fail_always.add("/posts.json")

    result = scrape(site, tmp_path)

    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: 127.0.0.1 kept failing (HTTP 503) after 3 tries; try again later"
    )
    assert result.stdout == "scrape: downloaded 0 posts (0 bytes), skipped 0\n"
    assert len(site.seen("/posts.json")) == 3


def test_the_fake_refuses_numbered_pages_past_1000(site):
    answer = requests.get(f"{site.base_url}/posts.json", params={"page": "1001"}, timeout=5)

    assert answer.status_code == 410
    assert "beyond page 1000" in answer.json()["message"]


def test_retry_after_is_honoured_on_429(site, tmp_path):
    site.behaviour.throttle_once["/posts.json"] = 1

    result = scrape(site, tmp_path, "--limit", "1")

    assert result.returncode == 0, result.stderr
    first, second = site.seen("/posts.json")[:2]
    assert first.status == 429 and second.status == 200
    assert second.time - first.time >= 0.95


@pytest.mark.slow
def test_rate_limit_spaces_all_requests(site, tmp_path):
    rate = 5.0
    arguments = ["--base-url", site.base_url, "--data-dir", str(tmp_path), "--quiet"]
    arguments += ["--backoff", "0.01"]
    result = run_cli([*arguments, "--rate", str(rate), "--limit", "6"])

    assert result.returncode == 0, result.stderr
    times = [request.time for request in site.seen()]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) >= 8
    # Arrival times jitter by a few ms around the client's own spacing.
    assert min(gaps) >= 1 / rate - 0.02
    held = (len(times) - 1) / (times[-1] - times[0])
    assert held <= rate * 1.05
    print(f"rate limiter held {held:.2f} requests/s over {len(times)} requests at --rate {rate}")


def test_json_summary(site, tmp_path):
    result = scrape(site, tmp_path, "--limit", "0", "--json")

    summary = json.loads(result.stdout)
    assert summary["downloaded"] == len(EXPECTED)
    assert summary["skipped"] == EXPECTED_SKIPS
    assert summary["failed_pending"] == len(EXPECTED_FAILED)
    assert summary["retried"] == summary["given_up"] == 0
    assert summary["interrupted"] is False and summary["error"] is None


def test_legacy_answers_map_safe_to_general(tmp_path):
    with FakeDanbooru() as legacy_site:
        legacy_site.add_fixture_posts("posts_2020.json")
        auto = scrape(legacy_site, tmp_path / "auto", "--limit", "3")
        forced = scrape(
            legacy_site, tmp_path / "forced", "--limit", "3", "--rating-scheme", "current"
        )

    assert auto.returncode == 0 and forced.returncode == 0
    for post_id in posts_on_disk(tmp_path / "auto"):
        meta = json.loads((tmp_path / "auto" / "imgs" / f"{post_id}.json").read_text())
        assert (meta["rating"], meta["rating_raw"], meta["rating_scheme"]) == ("g", "s", "legacy")
    for post_id in posts_on_disk(tmp_path / "forced"):
        meta = json.loads((tmp_path / "forced" / "imgs" / f"{post_id}.json").read_text())
        assert (meta["rating"], meta["rating_scheme"]) == ("s", "current")


def test_flags_are_checked_before_any_work(tmp_path):
    for arguments, message in (
        (["--mode", "import"], "--mode import needs --src"),
        (["--src", str(tmp_path)], "--src is only for --mode import"),
        (["--start-id", "5"], "--start-id is only for --mode html"),
        (["--rate", "0"], "must be above 0"),
        (["--failed-attempts", "0"], "must be 1 or more"),
        (["--mode", "import", "--src", str(tmp_path), "--failed-attempts", "2"], "does not apply"),
        (["--variant", "huge"], "invalid choice"),
    ):
        result = run_cli([*arguments, "--data-dir", str(tmp_path / "data")])
        assert result.returncode == 2
        assert re.search(re.escape(message), result.stderr)
    assert not (tmp_path / "data").exists()
