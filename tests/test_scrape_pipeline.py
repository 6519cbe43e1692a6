"""The scraper and the pipeline together: what --mode scrape downloads trains and tags."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from danbooru_server import EXPECTED, FAST, REPO, FakeDanbooru, build_trap_site, run_cli


@pytest.mark.slow
def test_scraped_posts_go_through_maeshori_build_train_and_pred(tmp_path):
    with FakeDanbooru() as site:
        build_trap_site(site)
        scraped = run_cli(
            ["--base-url", site.base_url, "--data-dir", str(tmp_path), *FAST, "--limit", "0"]
        )
    # 1: finished, but an input failed (the trap site's corrupt post, reported)
    assert scraped.returncode == 1, scraped.stderr
    images = sorted(
        path for path in (tmp_path / "imgs").iterdir() if path.suffix not in (".txt", ".json")
    )
    assert len(images) == len(EXPECTED)

    pipeline = subprocess.run(
        [sys.executable, "alt_i2v.py", "--data-dir", str(tmp_path), "--quiet",
         "--maeshori", "--build", "--train", "--epochs", "1", "--batch-size", "4",
         "--weights", "none", "--json", "--top-k", "5", "--pred", *map(str, images[:3])],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert pipeline.returncode == 0, pipeline.stderr
    lines = pipeline.stdout.splitlines()
    assert lines[0].startswith("maeshori: ") and f"from {len(EXPECTED)} posts" in lines[0]
    assert lines[1].startswith(f"build: packed {len(EXPECTED)}, repacked 0, moved 0, removed 0,")
    assert lines[2].startswith("train: model saved to ")
    vocabulary = (tmp_path / "vocab.txt").read_text().splitlines()
    # Ratings from the real answers become tags (posts_2023.json has g, s, q and e posts).
    assert {"rating:general", "rating:sensitive"} <= set(vocabulary)
    predictions = [json.loads(line) for line in lines[3:]]
    assert [prediction["image"] for prediction in predictions] == list(map(str, images[:3]))
    for prediction in predictions:
        assert len(prediction["tags"]) == 5
        assert {tag["tag"] for tag in prediction["tags"]} <= set(vocabulary)
