"""Resuming --train in a fresh process: after an epoch, after a SIGKILL inside an epoch (with a
checkpoint after every batch), and refused after the vocabulary changed. A resumed run must end
with the weights, optimizer step and epoch of a run that was never interrupted."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest

from alti2v import defaults
from alti2v.data.posts import iter_posts
from alti2v.model.saved import find_model, load_model
from alti2v.tag.inputs import InputImage
from alti2v.tag.predict import predict_images
from alti2v.train.checkpoints import latest_checkpoint

pytestmark = pytest.mark.slow

FIRST_CHECKPOINT = "e0001-s0000000"
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}  # CPU training here is reproducible to the bit


def checkpoints_of(data_dir: Path) -> Path:
    return data_dir / "training" / "checkpoints"


def read_history(data_dir: Path) -> list[dict[str, str]]:
    with (data_dir / "training" / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_state(checkpoint: Path) -> dict:
    return json.loads((checkpoint / "state.json").read_text())


def load_keras(folder: Path) -> keras.Model:
    return keras.models.load_model(folder / "model.keras")


def iterations(model: keras.Model) -> int:
    return int(model.optimizer.iterations.numpy())


def assert_same_variables(actual: list, expected: list) -> None:
    assert [variable.path for variable in actual] == [variable.path for variable in expected]
    for mine, theirs in zip(actual, expected, strict=True):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), err_msg=mine.path, **TOLERANCE)


def assert_same_training_state(actual: keras.Model, expected: keras.Model) -> None:
    assert iterations(actual) == iterations(expected)
    assert_same_variables(actual.weights, expected.weights)
    assert_same_variables(actual.optimizer.variables, expected.optimizer.variables)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("alt_i2v.py:")]


@dataclass(frozen=True)
class OneEpoch:
    """A copy of the trained data trained for one epoch; its checkpoint and history kept aside."""

    data_dir: Path
    output: str  # stderr of the run
    checkpoint: Path
    history: list[dict[str, str]]


@pytest.fixture(scope="module")
def one_epoch(trained, alt_i2v, tmp_path_factory: pytest.TempPathFactory) -> OneEpoch:
    root = tmp_path_factory.mktemp("one_epoch")
    data_dir = trained.copy_dataset(root / "data")
    result = alt_i2v("--train", "--epochs", 1, *trained.train_flags, "--data-dir", data_dir)
    kept = root / FIRST_CHECKPOINT
    shutil.copytree(checkpoints_of(data_dir) / FIRST_CHECKPOINT, kept)
    return OneEpoch(data_dir, result.stderr, kept, read_history(data_dir))


def test_resume_after_an_epoch_continues_exactly(trained, alt_i2v, one_epoch) -> None:
    steps = trained.steps_per_epoch
    assert "starting a new run" in one_epoch.output
    first = load_keras(one_epoch.checkpoint)
    assert read_state(one_epoch.checkpoint)["epoch"] == 1
    assert read_state(one_epoch.checkpoint)["step"] == 0
    assert iterations(first) == steps
    (first_export,) = (one_epoch.data_dir / "models").iterdir()

    data_dir = one_epoch.data_dir
    result = alt_i2v("--train", "--epochs", 2, *trained.train_flags, "--data-dir", data_dir)
    assert (
        f"resuming from {checkpoints_of(data_dir) / FIRST_CHECKPOINT}: "
        "1 of 2 epochs done, batch 0 of the next"
    ) in result.stderr

    history = read_history(data_dir)
    assert [row["epoch"] for row in history] == ["1", "2"]
    timing = ("images_per_second", "seconds")
    assert {key: value for key, value in history[0].items() if key not in timing} == {
        key: value for key, value in one_epoch.history[0].items() if key not in timing
    }

    final_checkpoint = checkpoints_of(data_dir) / "e0002-s0000000"
    assert (read_state(final_checkpoint)["epoch"], read_state(final_checkpoint)["step"]) == (2, 0)
    resumed = load_keras(final_checkpoint)
    assert iterations(resumed) == 2 * steps
    # The resumed run started from the epoch-1 checkpoint and ends where a run that was never
    # stopped ends: same weights, same Adam moments, same step.
    uninterrupted = load_keras(trained.final_checkpoint)
    assert_same_training_state(resumed, uninterrupted)
    assert history == [
        {**row, **{key: mine[key] for key in timing}}
        for row, mine in zip(read_history(trained.data_dir), history, strict=True)
    ]

    # The longer run is exported as a new model, not mistaken for the one-epoch export.
    exported = Path(result.stdout.removeprefix("train: model saved to ").strip())
    assert exported.parent == data_dir / "models"
    assert exported != first_export
    assert json.loads((exported / "model.json").read_text())["epochs"] == 2
    assert read_state(final_checkpoint)["config"]["epochs"] == 2
    assert_same_variables(load_keras(exported).weights, load_keras(trained.model_folder).weights)


def test_kill_inside_an_epoch_resumes_at_the_checkpointed_batch(
    trained, alt_i2v, start_alt_i2v, one_epoch, tmp_path: Path
) -> None:
    data_dir = trained.copy_dataset(tmp_path / "data")
    checkpoints = checkpoints_of(data_dir)
    arguments = (
        "--train", "--epochs", 1, *trained.train_flags, "--checkpoint-minutes", 1e-9,
        "--data-dir", data_dir,
    )  # fmt: skip
    process = start_alt_i2v(*arguments)
    deadline = time.monotonic() + 240
    mid_epoch = re.compile(r"e0000-s(\d{7})")
    while not any(
        (match := mid_epoch.fullmatch(path.name)) and int(match.group(1)) > 0
        for path in (checkpoints.iterdir() if checkpoints.is_dir() else ())
    ):
        assert process.poll() is None, process.communicate()[1].decode(errors="replace")
        assert time.monotonic() < deadline, "no mid-epoch checkpoint appeared"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL

    checkpoint = latest_checkpoint(checkpoints)
    step = int(mid_epoch.fullmatch(checkpoint.name).group(1))
    assert 0 < step < trained.steps_per_epoch
    state = read_state(checkpoint)
    assert (state["epoch"], state["step"]) == (0, step)
    assert iterations(load_keras(checkpoint)) == step

    result = alt_i2v(*arguments)
    assert (
        f"resuming from {checkpoint}: 0 of 1 epochs done, batch {step} of the next"
    ) in result.stderr
    assert sorted(path.name for path in checkpoints.iterdir()) == [FIRST_CHECKPOINT]
    final = checkpoints / FIRST_CHECKPOINT
    assert (read_state(final)["epoch"], read_state(final)["step"]) == (1, 0)
    history = read_history(data_dir)
    assert [row["epoch"] for row in history] == ["1"]
    # The epoch's loss, pieced together across the kill, is the uninterrupted epoch's loss.
    assert float(history[0]["train_loss"]) == pytest.approx(
        float(one_epoch.history[0]["train_loss"]), rel=1e-5
    )
    # No batch was trained twice or skipped: the same state as one uninterrupted epoch.
    resumed = load_keras(final)
    assert iterations(resumed) == trained.steps_per_epoch
    assert_same_training_state(resumed, load_keras(one_epoch.checkpoint))


def test_changed_vocabulary_refuses_to_resume_until_fresh(trained, alt_i2v, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(trained.data_dir, data_dir)
    checkpoint = checkpoints_of(data_dir) / trained.final_checkpoint.name
    new_size = trained.vocab_size - 3
    alt_i2v(
        "--maeshori",
        "--vocab-size",
        new_size,
        "--build",
        "--build-workers",
        1,
        "--data-dir",
        data_dir,
    )

    kept = sorted(path.name for path in checkpoint.parent.iterdir())
    assert checkpoint.name in kept

    flags = (*trained.train_flags, "--data-dir", data_dir)
    refused = alt_i2v("--train", "--epochs", 3, *flags, expect=3)
    assert "Traceback" not in refused.stderr
    assert error_lines(refused.stderr) == [
        f"alt_i2v.py: error: {checkpoint}: trained on another vocabulary "
        f"({trained.vocab_size} tags) than vocab.txt ({new_size} tags); "
        "restore that vocabulary or train with --fresh"
    ]
    assert refused.stdout == ""
    assert sorted(path.name for path in checkpoint.parent.iterdir()) == kept

    fresh = alt_i2v("--train", "--fresh", "--epochs", 1, *flags)
    assert "removing the checkpoints" in fresh.stderr
    assert f"starting a new run: {new_size} tags" in fresh.stderr
    assert sorted(path.name for path in checkpoint.parent.iterdir()) == [FIRST_CHECKPOINT]
    state = read_state(checkpoint.parent / FIRST_CHECKPOINT)
    assert (state["epoch"], state["num_tags"]) == (1, new_size)
    assert [row["epoch"] for row in read_history(data_dir)] == ["1"]
    exported = load_model(Path(fresh.stdout.removeprefix("train: model saved to ").strip()))
    assert exported.tags == (data_dir / "vocab.txt").read_text().splitlines()
    assert exported.model.output_shape == (None, new_size)


def test_exported_model_loads_with_its_vocabulary(trained) -> None:
    folder = trained.model_folder
    assert find_model(None, trained.data_dir / "models") == folder
    assert find_model(folder / "model.keras", trained.data_dir / "models") == folder
    loaded = load_model(folder)
    assert (folder / "vocab.txt").read_text() == (trained.data_dir / "vocab.txt").read_text()
    assert loaded.tags == (trained.data_dir / "vocab.txt").read_text().splitlines()
    assert loaded.model.output_shape == (None, trained.vocab_size)
    assert loaded.info["num_tags"] == trained.vocab_size
    assert loaded.info["epochs"] == trained.epochs

    image = next(iter_posts(trained.data_dir / "imgs")).image
    (prediction,) = predict_images(loaded, [InputImage(image, image.parent)])
    assert prediction.error is None
    assert prediction.probabilities.shape == (len(loaded.tags),)
    assert all(0 <= probability <= 1 for probability in prediction.probabilities)


def test_ctrl_c_stops_after_the_batch_with_a_checkpoint_and_resumes_there(
    trained, alt_i2v, start_alt_i2v, one_epoch, tmp_path: Path
) -> None:
    data_dir = trained.copy_dataset(tmp_path / "data")
    arguments = ("--train", "--epochs", 1, *trained.train_flags, "--data-dir", data_dir)
    process = start_alt_i2v(*arguments)
    # tqdm's bar on stderr says when a batch is done; Ctrl-C then lands inside the epoch.
    stderr = bytearray()
    batch_done = re.compile(rb"\| [1-9]\d*/\d+ \[")
    deadline = time.monotonic() + 240
    while not batch_done.search(stderr):
        chunk = os.read(process.stderr.fileno(), 4096)
        assert chunk, f"alt_i2v.py ended early: {stderr.decode(errors='replace')}"
        stderr += chunk
        assert time.monotonic() < deadline, "no batch finished"
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=240)[1]
    stderr = (stderr + rest).decode(errors="replace")
    assert process.returncode == 130, stderr
    assert "Ctrl-C: stopping after this batch, with a checkpoint" in stderr
    assert "run the same command again to resume" in stderr
    assert "Traceback" not in stderr

    checkpoint = latest_checkpoint(checkpoints_of(data_dir))
    state = read_state(checkpoint)
    assert state["epoch"] == 0 and 0 < state["step"] <= trained.steps_per_epoch
    assert iterations(load_keras(checkpoint)) == state["step"]

    result = alt_i2v(*arguments)
    assert f"resuming from {checkpoint}: 0 of 1 epochs done, batch {state['step']}" in result.stderr
    # The interrupted epoch, finished by the second run, is the uninterrupted epoch.
    assert_same_training_state(
        load_keras(checkpoints_of(data_dir) / FIRST_CHECKPOINT), load_keras(one_epoch.checkpoint)
    )


def test_a_changed_dataset_refuses_to_resume(trained, alt_i2v, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(trained.data_dir, data_dir)
    checkpoint = checkpoints_of(data_dir) / trained.final_checkpoint.name
    recorded = read_state(checkpoint)["dataset"]
    assert recorded["num_train"] + recorded["num_eval"] == trained.post_count
    assert (recorded["eval_fraction"], recorded["image_size"]) == (0.2, 150)
    flags = ("--train", "--epochs", 3, *trained.train_flags, "--data-dir", data_dir)

    # Another --eval-fraction moves posts between the splits: resuming would train on eval posts.
    alt_i2v("--build", "--eval-fraction", 0.5, "--build-workers", 1, "--data-dir", data_dir)
    refused = alt_i2v(*flags, expect=3)
    (line,) = error_lines(refused.stderr)
    assert line.startswith(
        f"alt_i2v.py: error: {checkpoint}: the dataset changed since this run started (train "
        f"posts {recorded['num_train']} -> "
    )
    assert "--eval-fraction 0.2 -> 0.5" in line
    assert line.endswith("train with --fresh, or rebuild the dataset as it was to resume")

    # Rebuilt as it was, the run resumes; a flag it cannot honour is named, not dropped quietly.
    alt_i2v("--build", "--build-workers", 1, "--data-dir", data_dir)
    resumed = alt_i2v(*flags, "--learning-rate", 0.5, "--seed", 0)
    assert "resuming from" in resumed.stderr
    assert f"ignored: --learning-rate 0.5 (keeps {defaults.LEARNING_RATE})" in resumed.stderr
    assert "--seed" not in resumed.stderr.split("ignored:")[1]  # given, but the same value
    assert read_state(checkpoints_of(data_dir) / "e0003-s0000000")["epoch"] == 3


def test_a_retagged_post_refuses_to_resume(trained, alt_i2v, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(trained.data_dir, data_dir)
    vocabulary = set((data_dir / "vocab.txt").read_text().splitlines())
    post = next(iter_posts(data_dir / "imgs"))
    dropped = next(tag for tag in post.tags() if tag in vocabulary)
    post.tags_file.write_text(" ".join(tag for tag in post.tags() if tag != dropped) + "\n")
    build = alt_i2v("--build", "--build-workers", 1, "--data-dir", data_dir)
    assert "repacked 1" in build.stdout
    flags = (*trained.train_flags, "--data-dir", data_dir)
    refused = alt_i2v("--train", "--epochs", 3, *flags, expect=3)
    (line,) = error_lines(refused.stderr)
    assert "post images or tags" in line and "--fresh" in line


def test_augmented_dropout_run_resumes_exactly(trained, alt_i2v, tmp_path: Path) -> None:
    # Augmentation draws from (seed, epoch, post) and the checkpoint keeps Dropout's generator
    # state, which Keras does not save: the resumed run sees the same pixels and masks.
    recipe = (*trained.train_flags, "--augment", "flip,crop,light", "--dropout", "0.5")
    whole = trained.copy_dataset(tmp_path / "whole")
    alt_i2v("--train", "--epochs", 2, *recipe, "--data-dir", whole)
    halves = trained.copy_dataset(tmp_path / "halves")
    alt_i2v("--train", "--epochs", 1, *recipe, "--data-dir", halves)
    alt_i2v("--train", "--epochs", 2, *recipe, "--data-dir", halves)
    final = "e0002-s0000000"
    resumed = load_keras(checkpoints_of(halves) / final)
    assert_same_training_state(resumed, load_keras(checkpoints_of(whole) / final))
    # And the recipe changed training: the seed recipe's weights are not these.
    plain = load_keras(trained.final_checkpoint)
    assert not np.allclose(resumed.weights[-1].numpy(), plain.weights[-1].numpy())


def test_linear_probe_start_resumes_exactly(trained, alt_i2v, tmp_path: Path) -> None:
    # The probe is fitted once, on the new run; a resumed run keeps the checkpoint's weights.
    recipe = (*trained.train_flags, "--head-init", "linear-probe")
    whole = trained.copy_dataset(tmp_path / "whole")
    started = alt_i2v("--train", "--epochs", 2, *recipe, "--data-dir", whole)
    assert "--head-init linear-probe: fitting" in started.stderr
    halves = trained.copy_dataset(tmp_path / "halves")
    alt_i2v("--train", "--epochs", 1, *recipe, "--data-dir", halves)
    resumed_run = alt_i2v("--train", "--epochs", 2, *recipe, "--data-dir", halves)
    assert "--head-init linear-probe: fitting" not in resumed_run.stderr
    final = "e0002-s0000000"
    resumed = load_keras(checkpoints_of(halves) / final)
    assert_same_training_state(resumed, load_keras(checkpoints_of(whole) / final))
    plain = load_keras(trained.final_checkpoint)
    assert not np.allclose(resumed.weights[-1].numpy(), plain.weights[-1].numpy())


def test_a_resume_keeps_its_precision_unless_one_is_given(trained, alt_i2v, tmp_path: Path) -> None:
    # --precision auto measures bfloat16's gain at each start, and the measurement can fall
    # either side of its bar on a loaded machine: a resumed run keeps what the checkpoint
    # trained in. A --precision on the command line still changes it, and says so.
    unpinned = trained.train_flags[: trained.train_flags.index("--precision")]
    data_dir = trained.copy_dataset(tmp_path / "data")
    alt_i2v("--train", "--epochs", 1, *unpinned, "--precision", "bfloat16", "--data-dir", data_dir)
    kept = alt_i2v("--train", "--epochs", 2, *unpinned, "--data-dir", data_dir)
    assert "resuming in" not in kept.stderr
    assert read_state(checkpoints_of(data_dir) / "e0002-s0000000")["config"]["precision"] == (
        "bfloat16"
    )
    changed = alt_i2v(
        "--train", "--epochs", 3, *unpinned, "--precision", "float32", "--data-dir", data_dir
    )
    assert "resuming in float32 a run trained so far in bfloat16" in changed.stderr
    assert read_state(checkpoints_of(data_dir) / "e0003-s0000000")["config"]["precision"] == (
        "float32"
    )


def test_reader_processes_train_as_the_threads_do(trained, alt_i2v, one_epoch, tmp_path) -> None:
    # --reader-processes moves the batches' making into other processes: the same batches,
    # augmentation included, so the same weights and Adam state after an epoch.
    data_dir = trained.copy_dataset(tmp_path / "data")
    result = alt_i2v(
        "--train", "--epochs", 1, *trained.train_flags, "--reader-processes", 2,
        "--data-dir", data_dir,
    )  # fmt: skip
    assert "train: 2 reader processes make the batches" in result.stderr
    checkpoint = checkpoints_of(data_dir) / FIRST_CHECKPOINT
    assert read_state(checkpoint)["config"]["augment"] == "flip"
    assert_same_training_state(load_keras(checkpoint), load_keras(one_epoch.checkpoint))
