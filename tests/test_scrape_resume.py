"""A scraper killed (SIGKILL) or stopped (Ctrl-C) mid-run, then started again, ends with exactly
the expected posts: no partial files, and no post stored before the stop is downloaded again."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from danbooru_server import FAST, FakeDanbooru, posts_on_disk, run_cli, start_cli

POST_COUNT = 24
FIRST_ID = 5000


@pytest.fixture
def slow_site():
    with FakeDanbooru() as site:
        site.add_clones("posts_2023.json", first_id=FIRST_ID, count=POST_COUNT)
        site.behaviour.page_size = 5
        site.behaviour.file_delay = 0.05
        yield site


def arguments(site: FakeDanbooru, data_dir: Path) -> list[str]:
    return ["--base-url", site.base_url, "--data-dir", str(data_dir), *FAST, "--limit", "0"]


def wait_for_posts(data_dir: Path, count: int, process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (data_dir / "imgs").is_dir() and len(posts_on_disk(data_dir)) >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    raise AssertionError(f"fewer than {count} posts after {timeout} s")


def assert_consistent(data_dir: Path) -> None:
    """Every post is whole: image, .json and .txt; no temporary files remain."""
    for post_id, suffixes in posts_on_disk(data_dir).items():
        assert suffixes == {".jpg", ".json", ".txt"}, (post_id, suffixes)
        assert (data_dir / "imgs" / f"{post_id}.json").read_text().endswith("}\n")


def stored_paths(site: FakeDanbooru, data_dir: Path) -> set[str]:
    return {site.path_of(post_id) for post_id in posts_on_disk(data_dir)}


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_exactly_the_posts(slow_site, tmp_path):
    process = start_cli(arguments(slow_site, tmp_path))
    wait_for_posts(tmp_path, 7, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert_consistent(tmp_path)
    done_before = stored_paths(slow_site, tmp_path)
    requests_before = len(slow_site.seen())

    result = run_cli(arguments(slow_site, tmp_path))

    assert result.returncode == 0, result.stderr
    assert set(posts_on_disk(tmp_path)) == set(range(FIRST_ID, FIRST_ID + POST_COUNT))
    assert_consistent(tmp_path)
    assert not list(tmp_path.rglob("*.tmp"))
    # No image or .json of a post without its .txt is left over.
    stems = {path.stem for path in (tmp_path / "imgs").iterdir()}
    assert stems == {str(post_id) for post_id in posts_on_disk(tmp_path)}
    fetched_after = [request.path for request in slow_site.seen()[requests_before:]]
    assert not done_before & set(fetched_after)
    # Each file fetched once, except at most the one in flight when the kill came.
    fetched = [request.path for request in slow_site.file_requests()]
    assert len(fetched) - len(set(fetched)) <= 1
    # The restart continued from its cursor instead of walking from the first page.
    resumed_pages = [
        request.query.get("page")
        for request in slow_site.seen()[requests_before:]
        if request.path == "/posts.json"
    ]
    assert resumed_pages[0] is not None


@pytest.mark.slow
def test_ctrl_c_stops_after_the_current_post_and_the_next_run_finishes(slow_site, tmp_path):
    process = start_cli(arguments(slow_site, tmp_path))
    wait_for_posts(tmp_path, 3, process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=10)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stdout.endswith("; stopped by Ctrl-C, run again to continue\n")
    stopped_at = len(posts_on_disk(tmp_path))
    assert 3 <= stopped_at < POST_COUNT
    assert f"downloaded {stopped_at} posts" in stdout
    assert_consistent(tmp_path)
    assert not list(tmp_path.rglob("*.tmp"))

    result = run_cli(arguments(slow_site, tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"scrape: downloaded {POST_COUNT - stopped_at} posts")
    assert set(posts_on_disk(tmp_path)) == set(range(FIRST_ID, FIRST_ID + POST_COUNT))
    fetched = [request.path for request in slow_site.file_requests()]
    assert len(fetched) == len(set(fetched)) == POST_COUNT


def test_a_second_run_on_the_same_data_dir_is_refused(slow_site, tmp_path):
    process = start_cli(arguments(slow_site, tmp_path))
    try:
        wait_for_posts(tmp_path, 1, process)
        result = run_cli(arguments(slow_site, tmp_path))
    finally:
        process.kill()
        process.communicate()

    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: another scraper is using {tmp_path}; wait for it to finish"
    )
