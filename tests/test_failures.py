"""Failure paths of alt_i2v.py: the exit-code convention, flags refused before any work, and every
damaged file a user can reach (state.json, vocab.json, vocab.txt, model.keras, model.json, the
LevelDB meta record, a weights file) ending in one line that names it, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alti2v.data.records import open_db
from alti2v.errors import EXIT_CODES_HELP

pytestmark = pytest.mark.slow


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("alt_i2v.py:")]


def one_error(result, *fragments: str) -> str:
    """The run's only error line, which must contain every fragment."""
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = error_lines(result.stderr)
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.fixture
def copy(trained, tmp_path: Path) -> Path:
    """A copy of the trained data directory, checkpoints and exported model included."""
    data_dir = tmp_path / "data"
    shutil.copytree(trained.data_dir, data_dir)
    return data_dir


# --- flags refused before any work (exit 2) -----------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--build", "--build-workers", "-1"), "--build-workers: must be 0 or more, got -1"),
        (("--train", "--freeze", "20"), "--freeze must be 0 to 19 (VGG16's layers), got 20"),
        (("--train", "--freeze", "-1"), "--freeze: must be 0 or more, got -1"),
        (("--build", "--image-size", "31"), "--image-size must be at least 32"),
        (("--train", "--learning-rate", "0"), "--learning-rate: must be above 0, got 0"),
        (("--train", "--warmup-epochs", "-0.5"), "--warmup-epochs: must be 0 or more, got -0.5"),
        (("--train", "--checkpoint-minutes", "0"), "--checkpoint-minutes: must be above 0"),
        (("--pred", "x.png", "--threshold", "1.5"), "--threshold: must be in [0, 1], got 1.5"),
        (("--pred", "x.png", "--epochs", "3"), "--epochs: only for --train; add --train"),
        (("--train", "--resize", "nearest"), "--resize: only for --build; add --build"),
        (("--build", "--fresh", "--json"), "--fresh: only for --train"),
    ],
)
def test_bad_flags_are_refused_before_any_work(tmp_path, alt_i2v, flags, message) -> None:
    result = alt_i2v(*flags, "--data-dir", tmp_path / "data", expect=2)
    assert message in error_lines(result.stderr)[-1]
    assert not (tmp_path / "data").exists()  # nothing was created


def test_help_documents_the_exit_codes(alt_i2v) -> None:
    result = alt_i2v("--help")
    assert " ".join(EXIT_CODES_HELP.split()) in " ".join(result.stdout.split())
    for code in ("0 success", "1 finished, but some inputs failed", "2 bad flags", "3 an error"):
        assert code in " ".join(result.stdout.split())


# --- exit 1: finished, but some inputs failed ---------------------------------------------------


def test_build_with_an_unreadable_image_finishes_with_exit_1(copy, alt_i2v) -> None:
    (copy / "imgs" / "1.png").write_bytes(b"not an image")
    result = alt_i2v("--build", "--build-workers", 1, "--data-dir", copy, expect=1)
    assert "removed 1" in result.stdout and "(1 unreadable)" in result.stdout
    assert f"{copy / 'imgs' / '1.png'}: cannot decode image" in result.stderr


# --- exit 3: one line naming the damaged file ---------------------------------------------------


def test_corrupt_state_json(trained, copy, alt_i2v) -> None:
    state = copy / "training" / "checkpoints" / trained.final_checkpoint.name / "state.json"
    state.write_text('{"epoch": 2, "st')
    result = alt_i2v("--train", "--epochs", 3, *trained.train_flags, "--data-dir", copy, expect=3)
    one_error(result, f"{state}: unreadable", "--fresh")


def test_truncated_checkpoint_model(trained, copy, alt_i2v) -> None:
    model = copy / "training" / "checkpoints" / trained.final_checkpoint.name / "model.keras"
    model.write_bytes(model.read_bytes()[:1000])
    result = alt_i2v("--train", "--epochs", 3, *trained.train_flags, "--data-dir", copy, expect=3)
    one_error(result, f"{model}: unreadable", "--fresh")


def test_corrupt_vocab_json_and_vocab_txt(copy, alt_i2v) -> None:
    (copy / "vocab.json").write_text("{")
    result = alt_i2v("--build", "--data-dir", copy, expect=3)
    one_error(result, f"{copy / 'vocab.json'}: unreadable", "run --maeshori again")
    (copy / "vocab.txt").write_bytes(b"\xff\xfe1girl\n")
    result = alt_i2v("--build", "--data-dir", copy, expect=3)
    one_error(result, f"{copy / 'vocab.txt'}: unreadable", "run --maeshori again")


@pytest.mark.parametrize("name", ["model.keras", "model.json", "vocab.txt"])
def test_damaged_exported_model(trained, copy, alt_i2v, name) -> None:
    (folder,) = (copy / "models").iterdir()
    path = folder / name
    path.write_bytes(path.read_bytes()[:40] + b"\xff")
    image = next((copy / "imgs").glob("*.png"))
    result = alt_i2v("--pred", image, "--data-dir", copy, expect=3)
    one_error(result, f"{path}: unreadable", "run --train again")


def test_damaged_meta_record(trained, copy, alt_i2v) -> None:
    db = open_db(copy / "dataset.ldb")
    db.put(b"meta", b"{not json")
    db.close()
    result = alt_i2v("--train", "--epochs", 3, *trained.train_flags, "--data-dir", copy, expect=3)
    one_error(result, f"{copy / 'dataset.ldb'}: damaged meta record", "run --build")
    result = alt_i2v("--build", "--data-dir", copy, expect=3)
    one_error(result, f"{copy / 'dataset.ldb'}: damaged meta record")


def test_a_bad_weights_file_reports_its_real_cause(trained, copy, alt_i2v, tmp_path) -> None:
    weights = tmp_path / "vgg16.weights.h5"
    weights.write_bytes(b"not an HDF5 file")
    result = alt_i2v(
        "--train", "--fresh", "--epochs", 1, "--batch-size", 4, "--weights", weights,
        "--data-dir", copy, expect=3,
    )  # fmt: skip
    line = one_error(result, f"--weights {weights}: cannot load (", "--weights none")
    assert "download" not in line.split("(")[0] and "offline" not in line


def test_a_failed_download_is_told_apart_from_a_bad_file(monkeypatch) -> None:
    import keras

    from alti2v.train.config import TrainConfig, TrainError
    from alti2v.train.loop import _build

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example/vgg16.h5: None -- no route to host")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with pytest.raises(TrainError) as caught:
        _build(3, TrainConfig(weights="imagenet", image_size=32))
    message = str(caught.value)
    assert message.startswith("cannot download VGG16's ImageNet weights (URL fetch failure")
    assert "no route to host" in message
