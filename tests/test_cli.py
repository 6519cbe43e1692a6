"""End-to-end tests of alt_i2v.py on tiny synthetic data: each mode's exact output and files,
--pred's formats and failures, the modes combined, --help, and the one-line errors."""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import synthetic
from alti2v.data.build import split_of
from alti2v.data.posts import iter_posts
from alti2v.data.vocabulary import TAG_CATEGORIES
from alti2v.train.loop import HISTORY_COLUMNS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PRED_PROBABILITY = r"\d\.\d{6}"


def error_lines(stderr: str) -> list[str]:
    """The CLI's own error lines (TensorFlow may add start-up chatter to stderr)."""
    return [line for line in stderr.splitlines() if line.startswith("alt_i2v.py:")]


@pytest.fixture(scope="module")
def images(trained) -> list[str]:
    """Two images of the trained data, as a user would name them."""
    return [str(post.image) for post in list(iter_posts(trained.data_dir / "imgs"))[:2]]


@pytest.fixture(scope="module")
def broken_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("broken") / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return str(path)


# --- the modes, one at a time (their runs are the session's `trained` fixture) ---------------


@pytest.mark.slow
def test_maeshori_prints_a_summary_and_writes_the_vocabulary(trained) -> None:
    data_dir = trained.data_dir
    distinct = {label for post in iter_posts(data_dir / "imgs") for label in post.labels()}
    assert trained.maeshori.stdout == (
        f"maeshori: {trained.vocab_size} tags from {trained.post_count} posts "
        f"({len(distinct)} distinct) -> {data_dir / 'vocab.txt'}\n"
    )
    tags = (data_dir / "vocab.txt").read_text().splitlines()
    meta = json.loads((data_dir / "vocab.json").read_text())
    assert len(tags) == trained.vocab_size
    assert set(tags) <= distinct
    assert meta["num_tags"] == trained.vocab_size
    assert set(meta["counts"]) == set(tags)


@pytest.mark.slow
def test_build_prints_its_counts(trained) -> None:
    data_dir = trained.data_dir
    num_eval = sum(split_of(post.post_id, 0.2) == "eval" for post in iter_posts(data_dir / "imgs"))
    assert trained.build.stdout == (
        f"build: packed {trained.post_count}, repacked 0, moved 0, removed 0, unchanged 0, "
        "skipped 0; "
        f"train {trained.post_count - num_eval}, eval {num_eval} -> {data_dir / 'dataset.ldb'}\n"
    )
    assert (data_dir / "dataset.ldb").is_dir()


@pytest.mark.slow
def test_train_writes_history_checkpoints_and_a_model(trained) -> None:
    data_dir = trained.data_dir
    folder = trained.model_folder
    assert trained.train.stdout == f"train: model saved to {folder}\n"
    assert "starting a new run" in trained.train.stderr

    with (data_dir / "training" / "history.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == HISTORY_COLUMNS
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for row in rows:
        assert 0 <= float(row["eval_map"]) <= 1
        assert float(row["train_loss"]) > 0

    checkpoints = data_dir / "training" / "checkpoints"
    assert trained.final_checkpoint.is_dir()
    for checkpoint in checkpoints.iterdir():
        assert sorted(path.name for path in checkpoint.iterdir()) == ["model.keras", "state.json"]

    assert folder.parent == data_dir / "models"
    assert sorted(path.name for path in folder.iterdir()) == [
        "model.json",
        "model.keras",
        "vocab.txt",
    ]
    assert (folder / "vocab.txt").read_text() == (data_dir / "vocab.txt").read_text()
    info = json.loads((folder / "model.json").read_text())
    assert info["num_tags"] == trained.vocab_size
    assert (info["image_size"], info["resize"], info["preprocess"]) == (150, "area", "vgg")
    assert set(info["metrics"]) == set(HISTORY_COLUMNS)
    # The tag categories travel with the model (synthetic posts are all "general").
    vocab_meta = json.loads((data_dir / "vocab.json").read_text())
    assert info["categories"] == vocab_meta["categories"]
    assert set(info["categories"].values()) <= {"general", "rating"}


# --- --pred -------------------------------------------------------------------------------


@pytest.mark.slow
def test_pred_text_lines_top_k_and_a_broken_file(trained, alt_i2v, images, broken_image):
    result = alt_i2v(
        "--pred", images[0], broken_image, images[1],
        "--top-k", 3, "--data-dir", trained.data_dir,
        expect=1,
    )  # fmt: skip
    tags = set((trained.data_dir / "vocab.txt").read_text().splitlines())
    lines = result.stdout.splitlines()
    assert len(lines) == 2 * 3
    for image, chunk in ((images[0], lines[:3]), (images[1], lines[3:])):
        probabilities = []
        for line in chunk:
            match = re.fullmatch(rf"{re.escape(image)} tag=(\S+) prob=({PRED_PROBABILITY})", line)
            assert match, line
            assert match.group(1) in tags
            probabilities.append(float(match.group(2)))
        assert probabilities == sorted(probabilities, reverse=True)
        assert len({line.split()[1] for line in chunk}) == 3
    assert broken_image not in result.stdout
    broken_lines = [line for line in result.stderr.splitlines() if broken_image in line]
    assert len(broken_lines) == 1, result.stderr
    assert broken_lines[0].startswith(f"{broken_image}: cannot decode image (")
    assert broken_lines[0].endswith("; not tagged")
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def all_tags_json(trained, alt_i2v, images, broken_image) -> subprocess.CompletedProcess:
    return alt_i2v(
        "--pred", images[0], broken_image, images[1],
        "--json", "--top-k", 0, "--data-dir", trained.data_dir,
        expect=1,
    )  # fmt: skip


@pytest.mark.slow
def test_pred_json_lines(trained, all_tags_json, images, broken_image) -> None:
    records = [json.loads(line) for line in all_tags_json.stdout.splitlines()]
    assert [record["image"] for record in records] == [images[0], broken_image, images[1]]
    tags = (trained.data_dir / "vocab.txt").read_text().splitlines()
    for record in (records[0], records[2]):
        assert set(record) == {"image", "model", "rating", "tags"}
        assert record["model"] == trained.model_folder.name
        assert record["rating"]["tag"].startswith("rating:")
        assert all(item["category"] in TAG_CATEGORIES for item in record["tags"])
        assert sorted(item["tag"] for item in record["tags"]) == sorted(tags)  # --top-k 0: all
        probabilities = [item["prob"] for item in record["tags"]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert all(0 <= probability <= 1 for probability in probabilities)
    assert set(records[1]) == {"image", "error"}
    assert records[1]["error"].startswith(f"{broken_image}: cannot decode image")
    assert "Traceback" not in all_tags_json.stderr


@pytest.mark.slow
def test_pred_threshold_keeps_only_likely_tags(trained, alt_i2v, images, all_tags_json):
    everything = json.loads(all_tags_json.stdout.splitlines()[0])["tags"]
    probabilities = sorted(item["prob"] for item in everything)
    # Halfway between two neighbouring probabilities, so rounding cannot move a tag across.
    threshold = (probabilities[3] + probabilities[4]) / 2
    result = alt_i2v(
        "--pred", images[0], "--top-k", 0, "--threshold", threshold,
        "--data-dir", trained.data_dir,
    )  # fmt: skip
    expected = [item for item in everything if item["prob"] >= threshold]
    assert 0 < len(expected) < len(everything)
    lines = [re.fullmatch(r"(.+) tag=(\S+) prob=([0-9.]+)", line) for line in
             result.stdout.splitlines()]  # fmt: skip
    assert [(line[1], line[2]) for line in lines] == [(images[0], item["tag"]) for item in expected]
    # A batch of one and the batch of all_tags_json agree to float32 rounding, not to the digit.
    assert [float(line[3]) for line in lines] == pytest.approx(
        [item["prob"] for item in expected], abs=1e-5
    )


# --- all modes together -------------------------------------------------------------------


@pytest.mark.slow
def test_all_modes_in_one_command_run_in_order(tmp_path: Path, alt_i2v) -> None:
    synthetic.generate(tmp_path / "imgs", 12, seed=2)
    image = str(next(iter_posts(tmp_path / "imgs")).image)
    result = alt_i2v(
        "--pred", image, "--train", "--build", "--maeshori",
        "--vocab-size", 5, "--epochs", 1, "--batch-size", 8, "--weights", "none",
        "--top-k", 2, "--data-dir", tmp_path,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert len(lines) == 5, result.stdout
    assert lines[0].startswith("maeshori: 5 tags from 12 posts")
    assert lines[1].startswith("build: packed 12, repacked 0, moved 0, removed 0, unchanged 0,")
    (model_folder,) = (tmp_path / "models").iterdir()
    assert lines[2] == f"train: model saved to {model_folder}"
    for line in lines[3:]:
        assert re.fullmatch(rf"{re.escape(image)} tag=\S+ prob={PRED_PROBABILITY}", line), line


# --- help and errors ----------------------------------------------------------------------


def help_text(*flags: str, script: str = "alt_i2v.py") -> subprocess.CompletedProcess:
    """`script`'s help on an 80-column terminal, importing modules under -X importtime."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", str(PROJECT_ROOT / script), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        env={**os.environ, "COLUMNS": "80"},
        check=True,
    )


def help_sections(text: str) -> dict[str, list[str]]:
    """Each section's title, and the entries under it: a flag's lines joined into one."""
    sections: dict[str, list[str]] = {}
    entries: list[str] = []
    for line in text.splitlines():
        if line and not line.startswith(" "):
            entries = sections.setdefault(line.rstrip(":"), [])
        elif line.startswith("  ") and line[2] != " ":
            entries.append(line.strip())  # a flag, or a section's own text
        elif line.strip() and entries:
            entries[-1] += " " + line.strip()
    return sections


def visible_flags(parser) -> dict[str, list[str]]:
    """The parser's shown actions by destination: their spellings."""
    return {
        action.dest: action.option_strings
        for action in parser._actions
        if action.option_strings and action.help != argparse.SUPPRESS
    }


def test_help_fits_a_screen_and_names_every_mode_without_importing_tensorflow() -> None:
    result = help_text("--help")
    lines = result.stdout.splitlines()
    assert len(lines) <= 60, len(lines)
    assert max(map(len, lines)) <= 80
    modes = help_sections(result.stdout)["modes (combine freely; they run in this order)"]
    assert [entry.split()[0].rstrip(",") for entry in modes] == [
        "--maeshori", "--build", "--train", "--eval", "--export", "--pred", "--vec", "--index",
        "--similar", "--duplicates",
    ]  # fmt: skip
    assert "--help-all lists every flag" in result.stdout
    assert "--caption-mode" not in result.stdout  # only the most used flags
    imported = result.stderr  # -X importtime lists every module imported
    assert "alti2v.cli" in imported  # so the listing works
    for heavy in ("tensorflow", "keras", "plyvel"):
        assert heavy not in imported, heavy


def test_help_all_lists_every_flag_under_each_mode_it_serves_with_its_default_once() -> None:
    from alti2v.cli.common import FlagModes
    from alti2v.cli.main import build_parser

    flags = FlagModes()
    shown = visible_flags(build_parser(flags))
    sections = help_sections(help_text("--help-all").stdout)
    entries = [entry for listed in sections.values() for entry in listed]
    for spellings in shown.values():
        assert any(entry.startswith(spellings[0]) for entry in entries), spellings
    for dest, modes in flags.modes.items():
        for mode in set(modes) - {"distribute"}:  # a switch of --train, not a mode
            under_mode = [
                entry
                for title, listed in sections.items()
                if f"--{mode}" in re.split(r"[:(]", title)[0].replace(",", " ").split()
                for entry in listed
            ]
            flag = flags.flag_names[dest]
            assert any(entry.startswith(flag + " ") or entry == flag for entry in under_mode), (
                f"{flag} not listed under --{mode}"
            )
    for entry in entries:
        assert entry.count("(default") <= 1, entry
    (separator,) = [entry for entry in entries if entry.startswith("--caption-separator")]
    assert separator.endswith("(default: ', ')")
    (vocab_size,) = [entry for entry in entries if entry.startswith("--vocab-size")]
    assert vocab_size.endswith("(default: 4096)")
    # --top-k caps the model's tags; tests/test_tagfilter.py pins the rating and trigger words
    # that come on top of them.
    (top_k,) = [entry for entry in entries if entry.startswith("--top-k")]
    assert "the --always-first tags come on top" in top_k


OLD_SPELLINGS = (
    (("--similar", "q.png", "--top", "3"), "neighbours", 3),
    (("--build", "--workers", "2"), "build_workers", 2),
    (("--pred", "q.png", "--decode-workers", "2"), "pred_workers", 2),
    (("--train", "--readers", "2"), "train_readers", 2),
    (("--pred", "q.png", "--max-tags", "2"), "top_k", 2),
    (("--vocab",), "maeshori", True),
    (("--train", "--mixed-precision"), "precision", "bfloat16"),
)


@pytest.mark.parametrize(("argv", "dest", "value"), OLD_SPELLINGS)
def test_old_flag_names_still_work_and_help_leaves_them_out(argv, dest, value) -> None:
    from alti2v.cli.main import parse_args

    args, given = parse_args(list(argv))
    assert getattr(args, dest) == value
    assert dest in given
    old = argv[-2] if argv[-1].isdigit() else argv[-1]
    if old != "--vocab":  # an alias shown beside --maeshori, the original's name
        assert not re.search(rf"{old}(?![\w-])", help_text("--help-all").stdout), old


def test_an_old_spelling_given_to_the_wrong_mode_is_refused_by_its_new_name(alt_i2v, tmp_path):
    result = alt_i2v("--pred", "q.png", "--top", 3, "--data-dir", tmp_path, expect=2)
    assert error_lines(result.stderr)[-1].endswith(
        "--neighbours: only for --similar; add --similar or leave it out"
    )


def test_the_scrapers_help_groups_its_flags() -> None:
    from alti2v.cli.scrape import build_parser

    sections = help_sections(help_text("--help", script="danbooru_datasetgenerator.py").stdout)
    grouped = {
        "what to fetch": {"--mode", "--tags", "--limit", "--base-url", "--variant",
                          "--include-deleted", "--rating-scheme", "--start-id", "--src",
                          "--allow-host"},
        "manners towards the site": {"--rate", "--timeout", "--retries", "--backoff",
                                     "--max-wait", "--failed-attempts"},
        "where to write, what to print": {"--data-dir", "--json", "--quiet"},
    }  # fmt: skip
    for title, flags in grouped.items():
        assert {entry.split()[0] for entry in sections[title]} == flags, title
    every_flag = {spellings[0] for spellings in visible_flags(build_parser()).values()}
    assert every_flag - set().union(*grouped.values()) == {"-h"}
    assert "DANBOORU_LOGIN and DANBOORU_API_KEY" in " ".join(sections["credentials"])


def test_no_mode_is_a_usage_error(tmp_path: Path, alt_i2v) -> None:
    result = alt_i2v("--data-dir", tmp_path, expect=2)
    assert result.stderr.startswith("usage: alt_i2v.py")
    assert result.stderr.endswith(
        "alt_i2v.py: error: choose at least one mode: --maeshori, --build, --train, --eval, "
        "--export DIR, --pred FILE..., --vec FILE..., --index, --similar FILE..., --duplicates\n"
    )
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_negative_top_k_is_refused(tmp_path: Path, alt_i2v) -> None:
    result = alt_i2v("--pred", "x.png", "--top-k", -1, "--data-dir", tmp_path, expect=2)
    assert error_lines(result.stderr) == ["alt_i2v.py: error: --top-k must be 0 (all) or more"]


def test_conflicting_train_flags_are_refused_before_fresh_deletes(tmp_path: Path, alt_i2v):
    checkpoint = tmp_path / "training" / "checkpoints" / "e1-s0"
    checkpoint.mkdir(parents=True)
    result = alt_i2v(
        "--train", "--fresh", "--distribute", "--cache-features", "--data-dir", tmp_path,
        expect=2,
    )  # fmt: skip
    assert result.stderr.startswith("usage: alt_i2v.py")
    assert error_lines(result.stderr) == [
        "alt_i2v.py: error: --cache-features and --distribute together are not supported"
    ]
    assert result.stdout == ""
    assert checkpoint.is_dir()


@pytest.mark.parametrize(
    ("config", "cluster", "message"),
    [
        ({"cache_features": True}, {"device_count": 2}, "--cache-features and --distribute"),
        ({"head_init": "linear-probe"}, {"process_count": 2}, "--head-init linear-probe and"),
    ],
)
def test_train_refuses_unsupported_settings_before_fresh_deletes(
    tmp_path: Path, config: dict, cluster: dict, message: str
) -> None:
    from alti2v.data.layout import DataDir
    from alti2v.train.config import TrainConfig, TrainError
    from alti2v.train.distribute import Cluster
    from alti2v.train.loop import train

    checkpoint = tmp_path / "training" / "checkpoints" / "e1-s0"
    checkpoint.mkdir(parents=True)
    with pytest.raises(TrainError, match=message):
        train(DataDir(tmp_path), TrainConfig(**config), fresh=True, cluster=Cluster(**cluster))
    assert checkpoint.is_dir()


def test_maeshori_without_imgs_is_one_line(tmp_path: Path, alt_i2v) -> None:
    result = alt_i2v("--maeshori", "--data-dir", tmp_path, expect=3)
    assert result.stderr == (
        f"alt_i2v.py: error: {tmp_path / 'imgs'}: no such folder; "
        "put posts there (danbooru_datasetgenerator.py) first\n"
    )


def test_build_without_vocabulary_is_one_line(tmp_path: Path, alt_i2v) -> None:
    result = alt_i2v("--build", "--data-dir", tmp_path, expect=3)
    assert result.stderr == (
        f"alt_i2v.py: error: {tmp_path / 'vocab.txt'}: no vocabulary; run --maeshori first\n"
    )
    assert result.stdout == ""


@pytest.mark.slow
def test_pred_without_a_model_is_one_line(tmp_path: Path, alt_i2v) -> None:
    result = alt_i2v("--pred", "x.png", "--data-dir", tmp_path, expect=3)
    assert "Traceback" not in result.stderr
    assert error_lines(result.stderr) == [
        f"alt_i2v.py: error: {tmp_path / 'models'}: no trained model; "
        "run --train or give --model PATH"
    ]
    assert result.stdout == ""


@pytest.mark.slow
def test_train_without_dataset_is_one_line(tmp_path: Path, alt_i2v) -> None:
    (tmp_path / "vocab.txt").write_text("1girl\nsolo\n")
    result = alt_i2v("--train", "--weights", "none", "--data-dir", tmp_path, expect=3)
    assert "Traceback" not in result.stderr
    assert error_lines(result.stderr) == [
        f"alt_i2v.py: error: {tmp_path / 'dataset.ldb'}: no dataset; run --build first"
    ]


@pytest.mark.slow
def test_demo_shows_predicted_and_true_tags_of_held_out_posts(trained, tmp_path: Path) -> None:
    samples = tmp_path / "samples"
    synthetic.generate(samples, 3, seed=99)
    result = subprocess.run(
        [sys.executable, "-m", "synthetic.demo", "--data-dir", str(trained.data_dir),
         "--samples", str(samples), "--threshold", "0"],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"model {trained.model_folder}: {trained.vocab_size} tags")
    vocabulary = set((trained.data_dir / "vocab.txt").read_text().splitlines())
    for post in iter_posts(samples):
        block = lines[lines.index(f"== {post.image}") :][:4]
        assert block[1] == f"  true tags: {' '.join(post.labels())}"
        # With threshold 0 every vocabulary tag is shown, each marked against the truth.
        shown = dict(mark.rsplit(" ", 2)[::2] for mark in block[2][13:].split(", "))
        assert set(shown) == vocabulary
        assert all((verdict == "ok") == (tag in post.labels()) for tag, verdict in shown.items())
        assert block[3] == "  missed:    -"
    true_in_vocabulary = sum(len(set(post.labels()) & vocabulary) for post in iter_posts(samples))
    assert lines[-2].endswith(f"of {true_in_vocabulary} true tags found")
    assert (
        lines[-1]
        == f"contact sheet of these images, their top tags and true tags: {samples}/sheet.png"
    )
    with Image.open(samples / "sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.width > 3 * 256


def test_demo_stops_with_one_line_when_a_step_fails(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "synthetic.demo", "--pipeline", "--data-dir", str(tmp_path / "demo"),
         "--posts", "6", "--weights", str(tmp_path / "missing.weights.h5")],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # The step's own error, naming the file, then the demo's line saying which step stopped it.
    assert [line for line in error_lines(result.stderr) if "missing.weights.h5" in line]
    assert result.stderr.splitlines()[-1] == (
        "demo: stopped, `train VGG16 + the new head for 4 epochs` failed (exit 3); see above"
    )
