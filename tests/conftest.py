"""Shared fixtures of the pipeline tests: alt_i2v.py run as a user runs it, and one small data
directory taken through --maeshori, --build and --train once per session.

    def test_something(alt_i2v, trained):
        result = alt_i2v("--pred", image, "--data-dir", trained.data_dir)

Every run uses the real model with `--weights none` (nothing is downloaded) on the CPU, where
training is reproducible: a resumed run can be compared with an uninterrupted one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import synthetic

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ALT_I2V = PROJECT_ROOT / "alt_i2v.py"
CLI_TIMEOUT = 300  # seconds for one alt_i2v.py run; a 2-epoch run on 2 cores takes about 15

# The session's data: post ids 1..24 put 22 posts in train and 2 in eval at --eval-fraction 0.2.
POST_COUNT = 24
POST_SEED = 1
VOCAB_SIZE = 8
EPOCHS = 2
BATCH_SIZE = 4
STEPS_PER_EPOCH = 6  # ceil(22 train posts / 4)
# float32, not auto: the same figures on every machine, where auto trains in bfloat16 on one
# with AMX or a fast AVX512-BF16 and in float32 elsewhere. (Before auto's gain was kept per
# machine, a loaded one could also measure it either side of the bar between a run and its
# resume: 2 resume tests failed so.) tests/test_precision.py tests auto and bfloat16.
TRAIN_FLAGS = ("--batch-size", str(BATCH_SIZE), "--weights", "none", "--precision", "float32")

CliRunner = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory):
    """--precision auto's measured gain (alti2v/model/precision.py) kept in the session's own
    cache, not the user's: measured once, it is the same for every run of the session."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    yield
    patch.undo()


def cli_environment() -> dict[str, str]:
    # CPU only: GPU kernels are not bit-reproducible, and the resume tests compare weights.
    return dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")


def cli_command(*arguments: object) -> list[str]:
    return [sys.executable, str(ALT_I2V), *(str(argument) for argument in arguments)]


@pytest.fixture(scope="session")
def alt_i2v() -> CliRunner:
    """Run alt_i2v.py to the end; `expect` is the exit code the test requires."""

    def run(*arguments: object, expect: int | None = 0) -> subprocess.CompletedProcess:
        result = subprocess.run(
            cli_command(*arguments),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            env=cli_environment(),
            cwd=PROJECT_ROOT,
        )
        if expect is not None:
            assert result.returncode == expect, (
                f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture(scope="session")
def start_alt_i2v() -> Callable[..., subprocess.Popen]:
    """Start alt_i2v.py in the background (binary pipes), for tests that kill it."""

    def start(*arguments: object) -> subprocess.Popen:
        return subprocess.Popen(
            cli_command(*arguments),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cli_environment(),
            cwd=PROJECT_ROOT,
            # A shell without job control starts `make test &` with Ctrl-C ignored, and a
            # child inherits that; the tests that send it need the default back.
            preexec_fn=_default_ctrl_c,
        )

    return start


def _default_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass(frozen=True)
class TrainedData:
    """A data directory after --maeshori, --build and --train, and what each run printed."""

    data_dir: Path
    maeshori: subprocess.CompletedProcess
    build: subprocess.CompletedProcess
    train: subprocess.CompletedProcess
    post_count: int = POST_COUNT
    vocab_size: int = VOCAB_SIZE
    epochs: int = EPOCHS
    steps_per_epoch: int = STEPS_PER_EPOCH
    train_flags: tuple[str, ...] = TRAIN_FLAGS

    @property
    def model_folder(self) -> Path:
        (folder,) = (self.data_dir / "models").iterdir()
        return folder

    @property
    def final_checkpoint(self) -> Path:
        return self.data_dir / "training" / "checkpoints" / f"e{EPOCHS:04d}-s0000000"

    def copy_dataset(self, destination: Path) -> Path:
        """A new data directory with the same posts, vocabulary and LevelDB, not trained."""
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.data_dir / "imgs", destination / "imgs")
        shutil.copytree(self.data_dir / "dataset.ldb", destination / "dataset.ldb")
        for name in ("vocab.txt", "vocab.json"):
            shutil.copy2(self.data_dir / name, destination / name)
        return destination


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, alt_i2v: CliRunner) -> TrainedData:
    """Tests must not change this directory; copy it (copy_dataset) to train further."""
    data_dir = tmp_path_factory.mktemp("trained")
    synthetic.generate(data_dir / "imgs", POST_COUNT, seed=POST_SEED)
    common = ("--data-dir", data_dir)
    maeshori = alt_i2v("--maeshori", "--vocab-size", VOCAB_SIZE, *common)
    build = alt_i2v("--build", "--build-workers", 1, *common)
    train = alt_i2v("--train", "--epochs", EPOCHS, *TRAIN_FLAGS, *common)
    return TrainedData(data_dir, maeshori, build, train)
