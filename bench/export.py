"""--export at 64 and 4096 tags: seconds and peak memory of the whole `alt_i2v.py --export` run
(load the model, write the WD folder), against loading the model alone in the same way; and
images/s of the exported graph under onnxruntime (448 input) against Keras' forward pass of
the same model (150 input), batch 16, in one process, interleaved. Random weights: neither
speed nor memory depends on them.

    python -m bench.export            # markdown on stdout, kept under bench/measured/
    python -m bench.export --quick    # 64 tags only, fewer repeats
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPOSITORY, child_result, markdown_header, timed, write_measured


def make_model(models: Path, num_tags: int) -> Path:
    from alti2v.model.network import build_model
    from alti2v.model.saved import export_model

    tags = [f"tag_{index}" for index in range(num_tags - 4)] + [
        f"rating:{name}" for name in ("general", "sensitive", "questionable", "explicit")
    ]
    info = {"image_size": 150, "resize": "area", "preprocess": "vgg"}
    return export_model(models, build_model(num_tags, weights=None), tags, info)


def peak_of(command: list[str]) -> dict:
    """Seconds and peak resident memory (MiB) of `command` run to its end."""
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPOSITORY, capture_output=True)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child yet
    return {"seconds": round(seconds, 1), "peak_mib": round(peak_kib / 1024)}


def tagging_rates(model_folder: Path, wd_folder: Path, batch: int, repeats: int) -> dict:
    import keras
    import numpy as np
    import onnxruntime

    from alti2v.model.saved import load_model

    model = load_model(model_folder).model
    session = onnxruntime.InferenceSession(str(wd_folder / "model.onnx"))
    rng = np.random.default_rng(0)
    small = rng.uniform(-120, 140, (batch, 150, 150, 3)).astype(np.float32)
    large = rng.uniform(0, 255, (batch, 448, 448, 3)).astype(np.float32)

    def with_keras() -> None:
        keras.ops.convert_to_numpy(model.predict_on_batch(small))

    def with_onnxruntime() -> None:
        session.run(None, {"input": large})

    with_keras(), with_onnxruntime()  # warm-up
    rates = {"keras": [], "onnxruntime": []}
    for _ in range(repeats):
        rates["keras"].append(batch / timed(with_keras))
        rates["onnxruntime"].append(batch / timed(with_onnxruntime))
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "WD", "REPEATS"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--load", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:  # the baseline: the model loaded as --export loads it, nothing more
        from alti2v.model.saved import load_model

        load_model(Path(args.load))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"peak_mib": round(peak)}))
        return
    if args.child:
        model, wd, repeats = args.child
        print(json.dumps(tagging_rates(Path(model), Path(wd), 16, int(repeats))))
        return
    sizes = (64,) if args.quick else (64, 4096)
    repeats = 2 if args.quick else args.repeats
    rows, raw = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for num_tags in sizes:
            root = Path(scratch) / str(num_tags)
            folder = make_model(root / "models", num_tags)
            cli = [sys.executable, "alt_i2v.py", "--data-dir", str(root), "--model", str(folder)]
            # Each in a fresh process, so each peak is its own (RUSAGE_CHILDREN keeps the max).
            load = child_result("bench.export", "--load", str(folder))
            export = peak_of([*cli, "--export", str(root / "wd"), "--quiet"])
            rates = child_result(
                "bench.export", "--child", str(folder), str(root / "wd"), str(repeats)
            )
            size = (root / "wd" / "model.onnx").stat().st_size / 2**20
            keras_rate, onnx_rate = (
                statistics.median(rates[name]) for name in ("keras", "onnxruntime")
            )
            rows.append(
                f"| {num_tags} | {export['seconds']} s | {export['peak_mib']} MiB | "
                f"{load['peak_mib']} MiB | {size:.0f} MiB | {keras_rate:.1f} | {onnx_rate:.1f} "
                f"| {onnx_rate / keras_rate:.2f}x |"
            )
            raw.append({"tags": num_tags, "export": export, "load_only": load, "rates": rates})
    text = (
        markdown_header("--export: time, peak memory, and tagging speed of the export")
        + "| tags | --export run | its peak memory | loading alone | model.onnx | Keras img/s "
        "(150 in) | onnxruntime img/s (448 in) | onnxruntime / Keras |\n"
        "|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n```\n" + "\n".join(json.dumps(line) for line in raw) + "\n```\n"
    )  # fmt: skip
    print(text)
    if not args.quick:
        write_measured(text, "export")


if __name__ == "__main__":
    main()
