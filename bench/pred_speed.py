"""--pred speed on a folder of mixed images, against a baseline measured in the same run.

The folder: `--images` (200) synthetic illustrations re-encoded as PNG and JPEG at small
(100-400 px) and large (1200-2400 px) sizes. The model: the real network with a small
vocabulary and random weights (speed does not depend on them), exported like --train exports.
Measured, `--repeats` times each, interleaved so that machine load hits all alike:

- pipeline: predict_images (decoder threads feeding batches of 16) against the same with
  decoder processes, and against the one-image-at-a-time loop (decode, then predict, per image);
- the CLI as a user runs it, `alt_i2v.py --pred FOLDER --quiet`: seconds from process start to
  the first result line on stdout, and to the end.

Raw results (one JSON line per measurement, then the machine) go to stdout; save them with
    python -m bench.pred_speed > bench/measured/pred-speed-$(date +%Y%m%d).jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import synthetic
from bench.common import REPOSITORY, describe_machine, timed

NUM_TAGS = 64


def make_images(folder: Path, count: int, seed: int = 5) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        image, _, _ = synthetic.draw_post(seed, index + 1)
        large = index % 2 == 0
        side = rng.integers(1200, 2400) if large else rng.integers(100, 400)
        size = (int(side), int(side * rng.uniform(0.6, 1.6)))
        resized = image.convert("RGB").resize(size)
        path = folder / f"{index:03d}.{'png' if index % 4 < 2 else 'jpg'}"
        resized.save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))
        paths.append(path)
    return paths


def export_small_model(models: Path, num_tags: int = NUM_TAGS) -> Path:
    from alti2v.model.network import build_model
    from alti2v.model.saved import export_model

    tags = [f"tag_{index}" for index in range(num_tags)]
    info = {"image_size": 150, "resize": "area", "preprocess": "vgg"}
    return export_model(models, build_model(num_tags, weights=None), tags, info)


def one_at_a_time(loaded, paths: list[Path]) -> None:
    from alti2v.data.images import load_image
    from alti2v.tag.predict import predict_arrays

    for path in paths:
        predict_arrays(loaded, load_image(path)[None])


def pipeline(loaded, paths: list[Path], pool: str) -> None:
    from alti2v.tag.inputs import InputImage
    from alti2v.tag.predict import predict_images

    images = [InputImage(path, path.parent) for path in paths]
    for _ in predict_images(loaded, images, batch_size=16, pool=pool):
        pass


def cli_run(model: Path, folder: Path) -> tuple[float, float]:
    """(seconds to the first stdout line, seconds to the end) of `--pred FOLDER`."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, str(REPOSITORY / "alt_i2v.py"), "--pred", str(folder),
               "--model", str(model), "--quiet"]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=environment, cwd=REPOSITORY)
    process.stdout.readline()
    first_line = time.perf_counter() - started
    process.stdout.read()
    if process.wait() != 0:
        raise RuntimeError(f"{command} failed")
    return first_line, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="images in the folder")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from alti2v.model.saved import load_model

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "images"
        folder.mkdir()
        paths = make_images(folder, args.images)
        model = export_small_model(Path(scratch) / "models")
        loaded = load_model(model)
        pipeline(loaded, paths[:20], "thread")  # trace the batch shapes outside the timing
        one_at_a_time(loaded, paths[:2])
        runs = {
            "pipeline, decoder threads, batches of 16": lambda: pipeline(loaded, paths, "thread"),
            "pipeline, decoder processes, batches of 16": lambda: pipeline(
                loaded, paths, "process"
            ),
            "one image at a time (decode, predict)": lambda: one_at_a_time(loaded, paths),
        }
        rates: dict[str, list[float]] = {name: [] for name in runs}
        cli: list[tuple[float, float]] = []
        for repeat in range(args.repeats):
            for name, run in runs.items():
                seconds = timed(run)
                rates[name].append(len(paths) / seconds)
                print(json.dumps({"repeat": repeat, "run": name, "seconds": round(seconds, 3),
                                  "images_per_second": round(len(paths) / seconds, 2),
                                  "loadavg": os.getloadavg()}), flush=True)  # fmt: skip
            first, total = cli_run(model, folder)
            cli.append((first, total))
            print(json.dumps({"repeat": repeat, "run": "alt_i2v.py --pred FOLDER --quiet",
                              "first_line_seconds": round(first, 3),
                              "total_seconds": round(total, 3),
                              "loadavg": os.getloadavg()}), flush=True)  # fmt: skip
    baseline = rates["one image at a time (decode, predict)"]
    summary = {
        name: {
            "median_images_per_second": round(statistics.median(values), 2),
            "min": round(min(values), 2),
            "max": round(max(values), 2),
            "median_ratio_to_one_at_a_time": round(
                statistics.median(v / b for v, b in zip(values, baseline, strict=True)), 2
            ),
        }
        for name, values in rates.items()
    }
    firsts = [first for first, _ in cli]
    summary["cli_first_line_seconds"] = {
        "median": round(statistics.median(firsts), 2),
        "min": round(min(firsts), 2),
        "max": round(max(firsts), 2),
    }
    print(json.dumps({"summary": summary, "images": len(paths), "machine": describe_machine()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
