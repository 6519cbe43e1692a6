"""Speed benchmark: each measurement next to a baseline measured in the same run, as a ratio.

- decode: load_image on large JPEGs (JPEG draft decoding) vs full decode + the same resize;
- build: --build packing on every core vs one process;
- pred: batched prediction vs one image per forward pass (as the original did);
- train: training steps streamed from LevelDB vs the same batches already in memory.
Training and prediction use the real model with a 4096-tag head (random weights: speed does not
depend on them). One JSON line per measurement on stderr, a markdown table on stdout.

    python -m bench.speed
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from alti2v.data.build import BuildSettings, build_dataset
from alti2v.data.images import RESIZE_FILTERS, load_image
from alti2v.data.layout import DataDir
from alti2v.data.vocabulary import build_vocabulary
from bench.common import compile_as_train, in_memory, markdown_header, timed, write_measured
from bench.images import large_jpegs, sample_posts


def bench_decode(folder: Path, count: int) -> dict:
    paths = large_jpegs(folder, count, (2400, 1800), prefix="large")

    def ours():
        for path in paths:
            load_image(path)

    def full_decode():
        for path in paths:
            with Image.open(path) as image:
                np.asarray(image.convert("RGB").resize((150, 150), RESIZE_FILTERS["area"]))

    return rate("decode 2400x1800 JPEG", count, "img", timed(ours), timed(full_decode))


def bench_build(folder: Path, count: int) -> tuple[dict, DataDir]:
    data = DataDir(folder / "data")
    sample_posts(data.imgs, count)
    build_vocabulary(data)
    seconds = {}
    for workers in (0, 1):
        shutil.rmtree(data.db, ignore_errors=True)
        settings = BuildSettings(workers=workers)
        seconds[workers] = timed(build_dataset, data, settings)
    label = f"build (850x1100, half PNG), {os.cpu_count()} processes vs 1"
    return rate(label, count, "post", seconds[0], seconds[1]), data


def bench_pred(folder: Path, count: int) -> dict:
    from alti2v.model.network import build_model
    from alti2v.model.saved import LoadedModel
    from alti2v.tag.inputs import InputImage
    from alti2v.tag.predict import predict_images

    paths = sorted(folder.glob("large*.jpg"))[:count]
    images = [InputImage(path, folder) for path in paths]
    tags = [f"tag{index}" for index in range(4096)]
    info = {"image_size": 150, "resize": "area", "preprocess": "vgg"}
    loaded = LoadedModel(build_model(len(tags), weights=None), tags, info, Path("untrained"))
    list(predict_images(loaded, images[:2], batch_size=2))  # compile outside the timing
    list(predict_images(loaded, images[:1], batch_size=1))
    batched = timed(lambda: list(predict_images(loaded, images, batch_size=16)))
    single = timed(lambda: list(predict_images(loaded, images, batch_size=1)))
    return rate("pred, batches of 16 vs 1", len(paths), "img", batched, single)


def bench_train(data: DataDir, steps: int) -> dict:
    from alti2v.data.records import open_db, record_keys
    from alti2v.model.network import build_model
    from alti2v.train.batches import PostBatches

    db = open_db(data.db)
    keys = record_keys(db, "train")[: 16 * steps]
    batches = PostBatches(db, keys, 16, 4096, "vgg")
    images, targets = in_memory(batches)
    model = compile_as_train(build_model(4096, weights=None), len(batches))
    # Trace both paths outside the timing.
    model.fit(batches, epochs=1, verbose=0, steps_per_epoch=1)
    model.fit(images[:16], targets[:16], batch_size=16, epochs=1, verbose=0)
    streamed = timed(lambda: model.fit(batches, epochs=1, verbose=0))
    memory = timed(
        lambda: model.fit(images, targets, batch_size=16, epochs=1, verbose=0, shuffle=False)
    )
    db.close()
    return rate("train, LevelDB stream vs in memory", len(keys), "img", streamed, memory)


def rate(label: str, count: int, unit: str, seconds: float, baseline_seconds: float) -> dict:
    result = {
        "benchmark": label,
        f"{unit}_per_second": round(count / seconds, 2),
        f"baseline_{unit}_per_second": round(count / baseline_seconds, 2),
        "speedup": round(baseline_seconds / seconds, 2),
    }
    print(json.dumps(result), file=sys.stderr)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=48, help="images for decode and pred")
    parser.add_argument("--posts", type=int, default=300, help="posts for build")
    parser.add_argument("--steps", type=int, default=8, help="training steps of 16 images")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        results = [bench_decode(folder, args.images)]
        build_result, data = bench_build(folder, args.posts)
        results += [build_result, bench_pred(folder, args.images), bench_train(data, args.steps)]
    lines = [
        markdown_header(
            "Speed, each figure against a baseline of the same run", "python -m bench.speed"
        ),
        "| benchmark | ours | baseline | baseline time / ours |",
        "|---|---|---|---|",
    ]
    for result in results:
        ours, baseline = (value for key, value in result.items() if key.endswith("per_second"))
        unit = next(key for key in result if key.endswith("per_second")).split("_")[0]
        lines.append(
            f"| {result['benchmark']} | {ours} {unit}/s | {baseline} {unit}/s | "
            f"{result['speedup']}x |"
        )
    text = "\n".join(lines) + "\n\n```json\n" + json.dumps(results, indent=1) + "\n```\n"
    print(text)
    write_measured(text, "speed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
