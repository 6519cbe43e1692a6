"""--cache-features against training from pixels: same data, same seed, in one run.

Builds --posts synthetic posts once, trains --epochs epochs from pixels and then from cached
features on copies of the dataset, and compares seconds per epoch after the first (the cache is
filled before the first), the whole run, and eval mAP per epoch. Also times reading the cached
features from the memory-mapped .npy against the same float16 bytes stored in LevelDB (the two
stores considered). Raw output: bench/measured/cache-features-<date>.md.

    python -m bench.cache_features
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np

from alti2v import defaults
from alti2v.data.layout import DataDir
from alti2v.data.records import open_db, record_keys
from bench.common import (
    DEFAULT_WEIGHTS,
    markdown_header,
    run_cli,
    spread,
    synthetic_dataset,
    timed,
    training_history,
    write_measured,
)

READ_BATCH = 16


def train_run(source: DataDir, folder: Path, cache_features: bool, args) -> dict:
    """`alt_i2v.py --train` on a copy of the source dataset, from pixels or cached features."""
    data = DataDir(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for made in (source.vocab, source.vocab_meta):
        shutil.copy2(made, folder / made.name)
    shutil.copytree(source.db, data.db)
    argv = ["--train", "--data-dir", str(folder), "--quiet", "--epochs", str(args.epochs),
            "--weights", args.weights, "--seed", str(args.seed),
            *(["--cache-features"] if cache_features else [])]  # fmt: skip
    wall = timed(run_cli, *argv)
    return {"wall_seconds": wall, "history": training_history(data), "data": data}


def read_speeds(data: DataDir, rounds: int) -> dict:
    """Random batches of cached features: memory-mapped .npy vs LevelDB values, images/s."""
    from alti2v.data.records import open_db

    array = np.load(data.features / "train.npy", mmap_mode="r")
    store = open_db(data.root / "features.ldb", create=True)
    with store.write_batch() as batch:
        for row in range(len(array)):
            batch.put(f"features/{row:08d}".encode(), np.ascontiguousarray(array[row]).tobytes())
    rng = np.random.default_rng(0)
    seconds = {"npy memory map": [], "LevelDB": []}

    def from_array(rows: np.ndarray) -> None:
        for start in range(0, len(rows), READ_BATCH):
            array[np.sort(rows[start : start + READ_BATCH])].astype(np.float32)

    def from_store(rows: np.ndarray) -> None:
        for start in range(0, len(rows), READ_BATCH):
            values = [
                store.get(f"features/{row:08d}".encode())
                for row in rows[start : start + READ_BATCH]
            ]
            np.stack([np.frombuffer(value, np.float16) for value in values]).astype(np.float32)

    for _ in range(rounds):
        rows = rng.permutation(len(array))
        seconds["npy memory map"].append(timed(from_array, rows))
        seconds["LevelDB"].append(timed(from_store, rows))
    store.close()
    return {name: [len(array) / value for value in values] for name, values in seconds.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=300, help="synthetic posts (20%% eval)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of each run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--weights",
        default=DEFAULT_WEIGHTS,
        help="VGG16 weights (the offline copy when present, else the Keras download)",
    )
    parser.add_argument("--work", type=Path, default=Path("bench/results/cache-features"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    header = markdown_header(
        "--cache-features vs training from pixels",
        "python -m bench.cache_features " + " ".join(sys.argv[1:]),
    )

    source = DataDir(args.work / "source")
    if not source.db.is_dir():
        synthetic_dataset(source.root, args.posts, seed=args.seed, workers=1)
    db = open_db(source.db)
    counts = {split: len(record_keys(db, split)) for split in ("train", "eval")}
    db.close()

    pixels = train_run(source, args.work / "pixels", False, args)
    cached = train_run(source, args.work / "cached", True, args)
    reads = read_speeds(cached["data"], rounds=3)

    def later(run: dict) -> list[float]:
        return [row["seconds"] for row in run["history"][1:]]

    ratios = [p / c for p, c in zip(later(pixels), later(cached), strict=True)]
    lines = [
        header,
        f"{counts['train']} train and {counts['eval']} eval posts, batch {defaults.BATCH_SIZE}, "
        f"{args.epochs} epochs, weights {Path(args.weights).name}.\n",
        "| | from pixels | cached features | ratio |",
        "|---|---|---|---|",
        f"| training seconds per epoch after the first | {spread(later(pixels))} | "
        f"{spread(later(cached))} | {spread(ratios)}x |",
        f"| first epoch, training seconds | {pixels['history'][0]['seconds']:.1f} | "
        f"{cached['history'][0]['seconds']:.1f} | |",
        f"| whole --train call (cache fill, eval, checkpoints included), s | "
        f"{pixels['wall_seconds']:.1f} | {cached['wall_seconds']:.1f} | "
        f"{pixels['wall_seconds'] / cached['wall_seconds']:.2f}x |",
        "",
        "| epoch | eval mAP, pixels | eval mAP, cached | eval loss, pixels | eval loss, cached |",
        "|---|---|---|---|---|",
    ]
    for mine, theirs in zip(pixels["history"], cached["history"], strict=True):
        lines.append(
            f"| {int(mine['epoch'])} | {mine['eval_map']:.4f} | {theirs['eval_map']:.4f} | "
            f"{mine['eval_loss']:.4f} | {theirs['eval_loss']:.4f} |"
        )
    lines += ["", "Reading cached features, random batches of 16, images/s (3 passes):", ""]
    lines += [f"- {name}: {spread(values)}" for name, values in reads.items()]
    lines += [
        "",
        "Raw histories:",
        "",
        "```json",
        json.dumps({"pixels": pixels["history"], "cached": cached["history"]}, indent=1),
        "```",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    write_measured(text, "cache-features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
