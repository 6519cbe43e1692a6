"""A post whose download fails is not lost: it is recorded in `scrape-state.json`, retried at the
start of later runs, stored when the site serves it again, and given up after --failed-attempts
(staying listed), against the fake Danbooru on 127.0.0.1."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from danbooru_server import FAST, FakeDanbooru, posts_on_disk, run_cli, start_cli
from test_scrape_resume import assert_consistent, wait_for_posts

FIRST_ID = 7000
POST_COUNT = 8
FAILING = FIRST_ID + 5  # on the first page of 5, so the walk goes on past it


@pytest.fixture
def site():
    with FakeDanbooru() as server:
        server.add_clones("posts_2023.json", first_id=FIRST_ID, count=POST_COUNT)
        server.behaviour.page_size = 5
        yield server


def scrape(site: FakeDanbooru, data_dir: Path, *extra: str):
    return run_cli(["--base-url", site.base_url, "--data-dir", str(data_dir), *FAST, *extra])


def failed_records(data_dir: Path) -> dict[str, dict]:
    """The failed posts of the only search, from the state file as a new process reads it."""
    state = json.loads((data_dir / "scrape-state.json").read_text())
    (records,) = state["failed"].values()
    return records


@pytest.mark.parametrize("mode", ["scrape", "html"])
def test_a_post_that_failed_once_is_stored_by_the_next_run(site, tmp_path, mode):
    missing_file = site.files.pop(site.path_of(FAILING))  # HTTP 404 for its image

    first = scrape(site, tmp_path, "--mode", mode, "--limit", "0")

    assert first.returncode == 1, first.stderr  # finished, but an input failed
    assert set(posts_on_disk(tmp_path)) == set(range(FIRST_ID, FIRST_ID + POST_COUNT)) - {FAILING}
    assert first.stdout.endswith(
        "skipped 1 (download_failed 1); failed posts to retry next run: 1\n"
    )
    assert f"post {FAILING}: download_failed on attempt 1 of 3; the next run" in first.stderr
    assert failed_records(tmp_path) == {
        str(FAILING): {"attempts": 1, "reason": "download_failed", "given_up": False}
    }
    # The walk finished below the failed post; only the record brings it back.
    state = json.loads((tmp_path / "scrape-state.json").read_text())
    (walk,) = state["walks"].values()
    assert walk["floor"] > FAILING

    site.files[site.path_of(FAILING)] = missing_file
    second = scrape(site, tmp_path, "--mode", mode, "--limit", "0")

    assert second.returncode == 0, second.stderr
    size = len(missing_file)
    assert second.stdout == (
        f"{mode}: downloaded 1 posts ({size} bytes), skipped 0; failed posts retried: 1, stored 1\n"
    )
    assert set(posts_on_disk(tmp_path)) == set(range(FIRST_ID, FIRST_ID + POST_COUNT))
    assert_consistent(tmp_path)
    assert failed_records(tmp_path) == {}
    # The retry asked for that one post, not for the search again from its start.
    post_path = f"/posts/{FAILING}.json" if mode == "scrape" else f"/posts/{FAILING}"
    assert site.seen(post_path)


def test_a_post_that_always_fails_is_given_up_after_its_attempts(site, tmp_path):
    site.behaviour.truncate_always.add(site.path_of(FAILING))

    first = scrape(site, tmp_path, "--limit", "0", "--failed-attempts", "2")
    second = scrape(site, tmp_path, "--limit", "0", "--failed-attempts", "2", "--json")
    requests_before = len(site.seen())
    third = scrape(site, tmp_path, "--limit", "0", "--failed-attempts", "2")

    # 1: finished, but an input failed; the third run only reads the given-up record.
    assert [run.returncode for run in (first, second, third)] == [1, 1, 0], third.stderr
    assert first.stdout.endswith("; failed posts to retry next run: 1\n")
    summary = json.loads(second.stdout)
    assert summary["skipped"] == {"corrupt": 1}
    assert (summary["retried"], summary["retried_stored"]) == (1, 0)
    assert (summary["given_up"], summary["failed_pending"]) == (1, 0)
    assert f"post {FAILING}: corrupt on attempt 2 of 2; given up" in second.stderr
    # Given up: the third run asks nothing about it, and the state still lists it.
    assert third.stdout == "scrape: downloaded 0 posts (0 bytes), skipped 0\n"
    asked = [request.path for request in site.seen()[requests_before:]]
    assert site.path_of(FAILING) not in asked and f"/posts/{FAILING}.json" not in asked
    assert failed_records(tmp_path) == {
        str(FAILING): {"attempts": 2, "reason": "corrupt", "given_up": True}
    }
    assert FAILING not in posts_on_disk(tmp_path)


def test_one_attempt_gives_up_at_the_first_failure(site, tmp_path):
    site.behaviour.truncate_always.add(site.path_of(FAILING))

    result = scrape(site, tmp_path, "--limit", "0", "--failed-attempts", "1")

    assert result.stdout.endswith(
        "skipped 1 (corrupt 1); given up: 1 (listed in scrape-state.json)\n"
    )
    assert failed_records(tmp_path)[str(FAILING)]["given_up"] is True


@pytest.mark.slow
def test_the_failed_record_survives_sigkill_and_the_next_run_stores_the_post(tmp_path):
    with FakeDanbooru() as site:
        site.add_clones("posts_2023.json", first_id=FIRST_ID, count=24)
        site.behaviour.page_size = 5
        site.behaviour.file_delay = 0.05
        newest_but_one = FIRST_ID + 22
        missing_file = site.files.pop(site.path_of(newest_but_one))
        arguments = [
            "--base-url",
            site.base_url,
            "--data-dir",
            str(tmp_path),
            *FAST,
            "--limit",
            "0",
        ]

        process = start_cli(arguments)
        wait_for_posts(tmp_path, 7, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

        assert failed_records(tmp_path) == {
            str(newest_but_one): {"attempts": 1, "reason": "download_failed", "given_up": False}
        }
        site.files[site.path_of(newest_but_one)] = missing_file
        result = run_cli(arguments)

    assert result.returncode == 0, result.stderr
    assert "failed posts retried: 1, stored 1" in result.stdout
    assert set(posts_on_disk(tmp_path)) == set(range(FIRST_ID, FIRST_ID + 24))
    assert_consistent(tmp_path)
    assert failed_records(tmp_path) == {}


def test_a_hand_broken_failed_record_is_one_clear_error(site, tmp_path):
    state_file = tmp_path / "scrape-state.json"
    state_file.write_text(json.dumps({"walks": {}, "failed": {"search": {"12": "corrupt"}}}))

    result = scrape(site, tmp_path)

    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f'error: {state_file}: "failed" is not as this scraper writes it '
        '({"<search>": {"<post id>": {"reason", "attempts", "given_up"}}}); '
        "fix it, or delete the file to start the walks afresh"
    ]
    assert not site.seen()
