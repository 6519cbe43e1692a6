"""End-to-end tests of --eval on tiny synthetic data (`--weights none`): the summary printed, the
files written (summary.json, per_tag.csv, pictures, a report.html that holds the tables and the
embedded pictures it claims, thresholds.json beside the model), and the one-line errors."""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

import synthetic
from alti2v.data.posts import iter_posts
from alti2v.data.vocabulary import vocabulary_hash
from alti2v.evaluate.groups import tag_group
from alti2v.evaluate.run import PER_TAG_COLUMNS
from alti2v.tag.thresholds import RULES, load_rule

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"


class ReportParser(HTMLParser):
    """The tables (as lists of rows of cell texts) and the <img> sources of a page."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.scripts = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def decoded(uri: str) -> tuple[str, bytes]:
    kind, payload = re.fullmatch(r"data:(image/\w+);base64,(.+)", uri).groups()
    return kind, base64.b64decode(payload)


@pytest.fixture(scope="module")
def evaluated(trained, alt_i2v, tmp_path_factory):
    """The session's trained data dir, copied, then --eval on 10 new posts (--eval-dir)."""
    data_dir = tmp_path_factory.mktemp("evaluated") / "data"
    shutil.copytree(trained.data_dir, data_dir)
    posts = data_dir.parent / "heldout"
    synthetic.generate(posts, 10, seed=5)
    result = alt_i2v(
        "--eval", "--eval-dir", posts, "--weights", "none", "--bootstrap", 20,
        "--threshold-rule", "f1", "--json", "--quiet", "--data-dir", data_dir,
    )  # fmt: skip
    model_folder = next((data_dir / "models").iterdir())
    return data_dir, model_folder, result


@pytest.mark.slow
def test_eval_prints_one_json_summary_and_writes_it(evaluated) -> None:
    data_dir, model_folder, result = evaluated
    summary = json.loads(result.stdout)
    folder = data_dir / "eval" / model_folder.name
    assert json.loads((folder / "summary.json").read_text()) == summary
    assert summary["model_folder"] == str(model_folder)
    assert set(summary) >= {"model", "frequency_prior", "approach3", "settings", "skipped"}
    model = summary["model"]
    assert model["images"] == 10
    assert model["fitting_images"] + model["report_images"] == 10
    assert set(model["rules"]) == set(RULES)
    assert 0 <= model["map"] <= 1
    assert summary["settings"]["rule"] == "f1"
    assert not (folder / ".scratch").exists()  # the memory-mapped scores are removed


@pytest.mark.slow
def test_eval_saves_thresholds_that_pred_can_load(evaluated) -> None:
    _, model_folder, _ = evaluated
    tags = (model_folder / "vocab.txt").read_text().splitlines()
    saved = json.loads((model_folder / "thresholds.json").read_text())
    assert saved["vocab_hash"] == vocabulary_hash(tags)
    for rule in ("f0.5", "f1", "f2", "category"):
        thresholds = load_rule(model_folder, rule, tags, vocabulary_hash(tags))
        assert thresholds.shape == (len(tags),)
        assert ((thresholds >= 0) & (thresholds <= 1)).all()


@pytest.mark.slow
def test_eval_writes_per_tag_csv(evaluated) -> None:
    data_dir, model_folder, _ = evaluated
    with (data_dir / "eval" / model_folder.name / "per_tag.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    tags = (model_folder / "vocab.txt").read_text().splitlines()
    assert [row["tag"] for row in rows] == tags
    assert tuple(rows[0]) == PER_TAG_COLUMNS
    f1 = json.loads((model_folder / "thresholds.json").read_text())["rules"]["f1"]
    for row in rows:
        assert float(row["threshold"]) == pytest.approx(f1[row["tag"]], abs=1e-4)
        assert row["category"] in ("general", "rating")
        assert row["group"] == tag_group(row["tag"], row["category"])
    # summary.json's per-group mAP is the mean AP of the group's rows that have one.
    summary = json.loads((data_dir / "eval" / model_folder.name / "summary.json").read_text())
    groups = {row["group"] for row in rows if row["ap"]}
    assert set(summary["groups"]) == groups and "rating" in groups
    for group, scores in summary["groups"].items():
        aps = [float(row["ap"]) for row in rows if row["group"] == group and row["ap"]]
        assert scores["tags"] == len(aps)
        assert scores["map"] == pytest.approx(sum(aps) / len(aps), abs=1e-3)


@pytest.mark.slow
def test_report_has_the_tables_and_pictures_it_claims(evaluated) -> None:
    data_dir, model_folder, _ = evaluated
    folder = data_dir / "eval" / model_folder.name
    page = ReportParser()
    page.feed((folder / "report.html").read_text(encoding="utf-8"))
    summary = json.loads((folder / "summary.json").read_text())
    pictures = sorted(path.name for path in folder.glob("*.png"))
    assert pictures == ["ap_vs_frequency.png", "pr_curves.png", "reliability.png", "training.png"]
    kinds = [decoded(source) for source in page.images]
    embedded_pngs = [data for kind, data in kinds if kind == "image/png"]
    assert sorted(embedded_pngs) == sorted((folder / name).read_bytes() for name in pictures)
    thumbnails = [data for kind, data in kinds if kind == "image/jpeg"]
    assert len(thumbnails) == 10  # every held-out post, since there are fewer than 24
    assert all(data.startswith(JPEG_SIGNATURE) for data in thumbnails)
    assert all(data.startswith(PNG_SIGNATURE) for data in embedded_pngs)

    scorers = page.tables[0]
    assert scorers[0][:2] == ["scorer", "mAP"]
    assert [row[0].split(" (")[0] for row in scorers[1:]] == [
        "model", "frequency prior", "approach 3",
    ]  # fmt: skip
    assert scorers[1][1].startswith(f"{summary['model']['map']:.3f}")
    rules = page.tables[1]
    assert [row[0] for row in rules[1:]] == list(RULES)
    per_tag = next(table for table in page.tables if table[0][0] == "tag")
    assert tuple(per_tag[0]) == PER_TAG_COLUMNS
    assert len(per_tag) - 1 == summary["model"]["tags"]
    assert page.scripts == 1  # the sorting script


@pytest.mark.slow
def test_eval_on_the_eval_split_prints_a_text_summary(trained, alt_i2v, tmp_path) -> None:
    data_dir = copied(trained, tmp_path)
    result = alt_i2v("--eval", "--weights", "none", "--bootstrap", 5, "--data-dir", data_dir)
    model_folder = next((data_dir / "models").iterdir())
    lines = result.stdout.splitlines()
    assert lines[0].startswith("eval: 2 images, ")  # the session's eval split holds 2 posts
    assert [line.split()[0] for line in lines[1:4]] == ["model", "prior", "approach"]
    assert lines[-2] == f"  report -> {data_dir / 'eval' / model_folder.name / 'report.html'}"
    assert lines[-1] == f"  thresholds -> {model_folder / 'thresholds.json'}"


# --- bad input: one line each, exit 3 -------------------------------------------------------


def refused(alt_i2v, *arguments) -> list[str]:
    """The CLI's error lines of a run that must end with exit 3 and no traceback."""
    result = alt_i2v(*arguments, expect=3)
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("alt_i2v.py:")]


def copied(trained, tmp_path: Path) -> Path:
    shutil.copytree(trained.data_dir, tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.slow
def test_eval_without_a_model_is_one_line(tmp_path: Path, alt_i2v) -> None:
    assert refused(alt_i2v, "--eval", "--data-dir", tmp_path) == [
        f"alt_i2v.py: error: {tmp_path / 'models'}: no trained model; "
        "run --train or give --model PATH"
    ]


@pytest.mark.slow
def test_eval_of_a_model_with_another_vocabulary_is_one_line(trained, alt_i2v, tmp_path) -> None:
    data_dir = copied(trained, tmp_path)
    vocabulary = next((data_dir / "models").iterdir()) / "vocab.txt"
    tags = vocabulary.read_text().splitlines()
    vocabulary.write_text("".join(f"{tag}\n" for tag in reversed(tags)))  # same size, new order
    assert refused(alt_i2v, "--eval", "--weights", "none", "--data-dir", data_dir) == [
        f"alt_i2v.py: error: {data_dir / 'dataset.ldb'} was built with another vocabulary than "
        "the model's; give the --model trained on it, or run --build again"
    ]


@pytest.mark.slow
def test_eval_with_an_empty_eval_split_is_one_line(trained, alt_i2v, tmp_path) -> None:
    data_dir = copied(trained, tmp_path)
    alt_i2v(
        "--build", "--eval-fraction", 0, "--build-workers", 1, "--quiet", "--data-dir", data_dir
    )
    assert refused(alt_i2v, "--eval", "--weights", "none", "--data-dir", data_dir) == [
        f"alt_i2v.py: error: {data_dir / 'dataset.ldb'} has no eval posts; run --build with "
        "--eval-fraction above 0, or give --eval-dir DIR"
    ]


@pytest.mark.slow
def test_eval_dir_without_tags_is_one_line(trained, alt_i2v, tmp_path) -> None:
    images = tmp_path / "untagged"
    images.mkdir()
    shutil.copy(next(iter_posts(trained.data_dir / "imgs")).image, images)
    arguments = ("--eval-dir", images, "--data-dir", trained.data_dir, "--weights", "none")
    assert refused(alt_i2v, "--eval", *arguments) == [
        f"alt_i2v.py: error: --eval-dir {images}: no tagged posts (need <id>.txt beside each "
        "image); an --eval-dir needs the true tags to score against"
    ]
    assert not (trained.data_dir / "eval").exists()
