"""What every benchmark shares: the machine a figure was measured on, where its raw output is
kept, timing and spread, the VGG16 weights it trains from, --train's compile, and a small
synthetic dataset built as the CLI builds one.

Timings on a shared machine are only comparable within one run, so every figure records the
date, CPU model and flags, cores, load average and the environment that changes kernels
(`describe_machine`, reading /proc/cpuinfo through `alti2v.cpuinfo`).

Only the standard library (and `alti2v.cpuinfo`, which imports nothing else) is imported at the
top: `bench.compute_limits --phases` times a cold --pred's own imports in a process that imports
this module.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from alti2v.cpuinfo import cpuinfo_field

REPOSITORY = Path(__file__).resolve().parents[1]
MEASURED = REPOSITORY / "bench" / "measured"  # committed raw outputs
# Environment variables that change which kernels run, so they belong with every timing.
KERNEL_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "KERAS_BACKEND", "XLA_FLAGS", "TF_ENABLE_ONEDNN_OPTS")
# CPU flags that decide the speed of matmuls, convolutions, float16 and Hamming distances.
SIMD_PREFIXES = ("avx", "amx", "fma", "f16c", "popcnt")

# The offline copy beside the repository when it is there, else Keras' one-time download, whose
# failure offline ends in --train's one-line message.
SHARED_WEIGHTS = REPOSITORY.parent / "shared/weights/vgg16_imagenet_notop.weights.h5"
DEFAULT_WEIGHTS = str(SHARED_WEIGHTS) if SHARED_WEIGHTS.exists() else "imagenet"


def describe_machine() -> dict:
    flags = cpuinfo_field("flags").split()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": cpuinfo_field("model name") or platform.processor(),
        "cpu_flags_simd": [flag for flag in flags if flag.startswith(SIMD_PREFIXES)],
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "environment": {name: os.environ[name] for name in KERNEL_VARIABLES if name in os.environ},
    }


def markdown_header(title: str, command: str | None = None) -> str:
    """Markdown lines naming the run: title, command (default: this process's), machine."""
    command = command or shlex.join([Path(sys.executable).name, *sys.orig_argv[1:]])
    machine = describe_machine()
    return (
        f"# {title}\n\n`{command}`\n\n"
        + "".join(f"- {name}: {value}\n" for name, value in machine.items())
        + "\n"
    )


def write_measured(text: str, name: str, suffix: str = ".md", folder: Path = MEASURED) -> Path:
    """Keep a run's raw output as `<folder>/<name>-<date>-<time><suffix>`; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{time.strftime('%Y%m%d-%H%M')}{suffix}"
    path.write_text(text)
    return path


def timed(function, *args) -> float:
    """Wall seconds of one call of `function(*args)`."""
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def timings(function, times: int) -> list[float]:
    """Wall seconds of each of `times` calls of `function()`."""
    return [timed(function) for _ in range(times)]


def spread(values: list[float], spec: str = ".2f") -> str:
    """`median M (min A, max B, n=N)` with each number formatted by `spec`; one value alone."""
    if len(values) == 1:
        return f"{values[0]:{spec}}"
    return (
        f"median {statistics.median(values):{spec}} "
        f"(min {min(values):{spec}}, max {max(values):{spec}}, n={len(values)})"
    )


def last_json_line(text: str) -> dict:
    """The JSON object on the last line of a process's stdout (a measurement's result)."""
    from alti2v.data.files import json_object

    return json_object(text.strip().splitlines()[-1])


def child_result(module: str, *arguments: str, **options) -> dict:
    """Run `python -m module arguments` from the repository (a measurement in a fresh process)
    and return the JSON object its last stdout line holds; its stderr is shown if it fails."""
    command = [sys.executable, "-m", module, *arguments]
    finished = subprocess.run(command, capture_output=True, text=True, cwd=REPOSITORY, **options)
    if finished.returncode:
        sys.stderr.write(finished.stderr)
        raise subprocess.CalledProcessError(finished.returncode, command)
    return last_json_line(finished.stdout)


def run_cli(*argv: str) -> None:
    """`alt_i2v.py ARGV` in this process, through the CLI's own parser, checks and main, its
    stdout lines sent to stderr (a benchmark's stdout is its result); a failure ends the
    benchmark with the CLI's exit status."""
    from alti2v.cli import main

    with contextlib.redirect_stdout(sys.stderr):
        status = main(list(argv))
    if status:
        raise SystemExit(status)


def compile_as_train(model, steps_per_epoch: int, backbone_lr_scale: float | None = None):
    """Compile `model` with --train's optimizer and loss at their defaults (alti2v.defaults), so
    that a timed step costs what a --train step costs (`backbone_lr_scale` other than the
    default's, to time that choice); return it."""
    from alti2v import defaults
    from alti2v.model.losses import LOSSES
    from alti2v.model.optimizer import make_optimizer

    optimizer = make_optimizer(
        defaults.LEARNING_RATE, steps_per_epoch, defaults.EPOCHS, defaults.WARMUP_EPOCHS,
        defaults.SCHEDULE,
        defaults.BACKBONE_LR_SCALE if backbone_lr_scale is None else backbone_lr_scale,
        defaults.HEAD_EPOCHS, defaults.WEIGHT_DECAY,
    )  # fmt: skip
    model.compile(optimizer=optimizer, loss=LOSSES[defaults.LOSS](defaults.LABEL_SMOOTHING))
    return model


def in_memory(batches) -> tuple:
    """Every batch of a PyDataset read once, as (images, targets) arrays: the same steps with
    no input pipeline, the baseline of a "streamed against in memory" figure."""
    import numpy as np

    pairs = [batches[index] for index in range(len(batches))]
    return (
        np.concatenate([images for images, _ in pairs]),
        np.concatenate([targets for _, targets in pairs]),
    )


def training_history(data) -> list[dict[str, float]]:
    """The rows of a --train run's history.csv (one per epoch), as numbers."""
    import csv

    with (data.training / "history.csv").open(newline="") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def synthetic_dataset(root: Path, posts: int, seed: int = 0, **settings):
    """`posts` synthetic posts drawn into `root`/imgs, their vocabulary and LevelDB dataset built
    as --maeshori --build would (BuildSettings(**settings)); return the DataDir."""
    import synthetic
    from alti2v.data.build import BuildSettings, build_dataset
    from alti2v.data.layout import DataDir
    from alti2v.data.vocabulary import build_vocabulary

    data = DataDir(root)
    synthetic.generate(data.imgs, posts, seed=seed)
    build_vocabulary(data)
    build_dataset(data, BuildSettings(**settings))
    return data


# The revision of kohya sd-scripts whose WD tagger works: its 2026-01 revision (c6bc632) fails
# with UnboundLocalError on `character_tags` once any character tag passes its threshold.
KOHYA_REVISION = "fc40a279 (2025-06-15)"


def kohya_wd14_input(path: Path):
    """The [448, 448, 3] float32 BGR input kohya sd-scripts feeds a WD tagger, call for call
    as finetune/tag_images_by_wd14_tagger.py's preprocess_image and library/utils.py's
    resize_image do at KOHYA_REVISION: white pad to a centred square, then OpenCV's area filter
    when shrinking both sides, else Pillow's LANCZOS. (Before 2025, the call was
    `cv2.resize(image, size, cv2.INTER_AREA)`, which passes the flag as `dst`: a bilinear
    shrink.)"""
    import cv2
    import numpy as np
    from PIL import Image

    image = np.array(Image.open(path).convert("RGB"))[:, :, ::-1]  # RGB -> BGR
    size = max(image.shape[0:2])
    pad_x, pad_y = size - image.shape[1], size - image.shape[0]
    pad_l, pad_t = pad_x // 2, pad_y // 2
    image = np.pad(image, ((pad_t, pad_y - pad_t), (pad_l, pad_x - pad_l), (0, 0)),
                   mode="constant", constant_values=255)  # fmt: skip
    if size >= 448:
        image = cv2.resize(image, (448, 448), interpolation=cv2.INTER_AREA)
    else:
        pil = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).resize(
            (448, 448), Image.LANCZOS
        )
        image = cv2.cvtColor(np.array(pil), cv2.COLOR_RGB2BGR)
    return image.astype(np.float32)
