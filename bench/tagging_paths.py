"""The ways a trained model can tag, side by side: images/s and held-out mAP of --pred with the
Keras model in float32 and in bfloat16, and of its --export (the WD layout) run by onnxruntime
in float32 and dynamically quantised to int8 (onnxruntime.quantization.quantize_dynamic: int8
weights, activations quantised per batch at run time).

Every path runs through --pred's own code (alti2v.tag.predict.predict_images, batch 16, decoding
threads, no test-time augmentation) on the held-out posts of a finished bench/quality.py run,
best of --repeats passes. The Keras paths read the image stretched to 150x150; the exported ones
read it as the WD tools do (white pad, 448, resized to 150 inside the graph), so the mAP of
Keras float32 against onnxruntime float32 is that skew (docs/export.md), and each precision's
loss is read against the path of the same input. mAP is over the tags both vocabularies share.

    python -m bench.tagging_paths bench/results/grid/float32-seed7
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.common import markdown_header, write_measured
from bench.quality import labelled_posts, posts_of

PATHS = ("keras float32", "keras bfloat16", "onnxruntime float32", "onnxruntime int8")


def measure(loaded, paths: list[str], repeats: int) -> tuple[float, dict[str, float]]:
    """(images/s, per-tag AP by tag name) of one way of tagging the held-out posts."""
    from alti2v.model.metrics import per_tag_average_precision
    from alti2v.tag.inputs import InputImage
    from alti2v.tag.predict import predict_images

    images = [InputImage(Path(path), Path(path).parent) for path in paths]
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        scores = np.stack([result.probabilities for result in predict_images(loaded, images)])
        rates.append(len(images) / (time.perf_counter() - started))
    _, targets = labelled_posts(Path(paths[0]).parent, loaded.tags)
    ap = per_tag_average_precision(scores, targets)
    return max(rates), {tag: float(value) for tag, value in zip(loaded.tags, ap, strict=True)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished bench.quality --work folder")
    parser.add_argument("--repeats", type=int, default=2, help="passes per path (the best)")
    args = parser.parse_args(argv)

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from alti2v.data.layout import DataDir
    from alti2v.export.wd import export_wd
    from alti2v.model.saved import find_model, load_model
    from alti2v.model.wd_folder import ONNX_FILE

    folder = find_model(None, DataDir(args.run).models)
    heldout, _ = labelled_posts(posts_of(args.run) / "heldout", [])
    with tempfile.TemporaryDirectory() as scratch:
        exported = Path(scratch) / "float32"
        export_wd(load_model(folder), exported, "general", Path(scratch) / "no-summary.json")
        quantised = Path(scratch) / "int8"
        shutil.copytree(exported, quantised)
        started = time.perf_counter()
        quantize_dynamic(exported / ONNX_FILE, quantised / ONNX_FILE, weight_type=QuantType.QInt8)
        quantise_seconds = time.perf_counter() - started
        sizes = {name: (path / ONNX_FILE).stat().st_size / 2**20
                 for name, path in (("float32", exported), ("int8", quantised))}  # fmt: skip
        models = {
            "keras float32": load_model(folder, "float32"),
            "keras bfloat16": load_model(folder, "bfloat16"),
            "onnxruntime float32": load_model(exported),
            "onnxruntime int8": load_model(quantised),
        }
        results = {
            name: measure(replace(loaded, tta="none"), heldout, args.repeats)
            for name, loaded in models.items()
        }
    shared = set.intersection(*({tag for tag, ap in aps.items() if np.isfinite(ap)}
                                for _, aps in results.values()))  # fmt: skip
    maps = {name: float(np.mean([aps[tag] for tag in shared])) for name, (_, aps) in
            results.items()}  # fmt: skip
    rates = {name: rate for name, (rate, _) in results.items()}
    rows = [
        f"{len(heldout)} held-out posts of {args.run.name}, {len(shared)} shared tags with a "
        f"positive; int8 quantisation took {quantise_seconds:.0f} s, model.onnx "
        f"{sizes['float32']:.0f} MiB -> {sizes['int8']:.0f} MiB.\n",
        "| path | images/s | vs keras float32 | mAP | mAP change |",
        "|---|---|---|---|---|",
    ]
    for name in PATHS:
        # Each precision against the path that reads the same input.
        reference = "keras float32" if name.startswith("keras") else "onnxruntime float32"
        rows.append(
            f"| {name} | {rates[name]:.1f} | {rates[name] / rates['keras float32']:.2f}x "
            f"| {maps[name]:.4f} | {maps[name] - maps[reference]:+.4f} vs {reference} |"
        )
    text = (
        markdown_header("Tagging paths: Keras float32 and bfloat16, onnxruntime float32 and int8")
        + "\n".join(rows)
        + "\n\n```\n"
        + json.dumps({"images_per_second": rates, "map": maps, "model_mib": sizes})
        + "\n```\n"
    )
    print(text)
    write_measured(text, "tagging-paths")


if __name__ == "__main__":
    main()
