"""Which layer makes the best illustration vector: tag agreement of nearest neighbours.

For each candidate layer of a trained model, the train posts of a built dataset are indexed
(alti2v.vectors.index, from their LevelDB pixels) and every eval post asks for its 10 nearest; the
score is the mean Jaccard similarity of the query's true tags and each neighbour's true tags. Random
neighbours give the chance level. For --duplicates, each eval post's image is also copied three ways
(half size, JPEG quality 60, a 90% centre crop), and the copies' similarity to the original is set
against the original's similarity to its nearest other post: a threshold between the two separates
copies from look-alikes. A markdown table on stdout, JSON lines on stderr.

    python -m bench.layers --data-dir /tmp/vsynth   # after --maeshori --build --train there
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from alti2v.data.images import load_image, to_model_input
from alti2v.data.layout import DataDir
from alti2v.data.posts import find_image
from alti2v.data.records import open_db, record_keys, unpack_record
from alti2v.model.saved import find_model, load_model
from alti2v.vectors.extract import normalise
from alti2v.vectors.index import VectorIndex
from alti2v.vectors.layers import LAYERS
from bench.common import describe_machine

NEIGHBOURS = 10
BATCH_SIZE = 16
THRESHOLDS = (0.98, 0.99, 0.995, 0.998)  # --duplicate-threshold values tried


def copies(image: Path, folder: Path) -> list[str]:
    """Half-size PNG, JPEG at quality 60, and a 90% centre crop of `image`, as files."""
    with Image.open(image) as opened:
        # Transparency on white, as alti2v.data.images decodes it: the copy shows the same picture.
        rgba = opened.convert("RGBA")
        picture = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    width, height = picture.size
    made = {
        "half.png": picture.resize((width // 2, height // 2), Image.Resampling.BICUBIC),
        "q60.jpg": picture,
        "crop.png": picture.crop(
            (width // 20, height // 20, width - width // 20, height - height // 20)
        ),
    }
    paths = []
    for name, copy in made.items():
        path = folder / f"{image.stem}-{name}"
        buffer = io.BytesIO()
        copy.save(buffer, format="JPEG" if name.endswith(".jpg") else "PNG", quality=60)
        path.write_bytes(buffer.getvalue())
        paths.append(str(path))
    return paths


def jaccard(first: set[int], second: set[int]) -> float:
    return len(first & second) / len(first | second) if first | second else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="random neighbours (chance level)")
    args = parser.parse_args()
    data = DataDir(args.data_dir)
    folder = find_model(None, data.models)
    loaded = load_model(folder)
    print(
        json.dumps({**describe_machine(), "model": str(folder), "args": vars(args)}, default=str),
        file=sys.stderr,
    )
    db = open_db(data.db)
    records = {
        split: [unpack_record(db.get(key)) for key in record_keys(db, split)]
        for split in ("train", "eval")
    }
    eval_ids = [key.decode().split("/", 1)[1] for key in record_keys(db, "eval")]
    db.close()
    train_tags = [set(labels) for _, labels in records["train"]]
    eval_tags = [set(labels) for _, labels in records["eval"]]
    rng = np.random.default_rng(args.seed)
    chance = np.mean(
        [
            np.mean([jaccard(tags, train_tags[other]) for other in rng.choice(len(train_tags), 10)])
            for tags in eval_tags
        ]
    )
    # One forward pass gives every candidate layer: the model runs once per image, not thrice.
    readout = keras.Model(loaded.model.input, [LAYERS[layer](loaded.model) for layer in LAYERS])
    info = loaded.info

    def vectors_of(pixels: np.ndarray) -> dict[str, np.ndarray]:
        batches = [
            readout.predict_on_batch(
                to_model_input(pixels[start : start + BATCH_SIZE], info["preprocess"])
            )
            for start in range(0, len(pixels), BATCH_SIZE)
        ]
        return {
            layer: normalise(np.concatenate([np.asarray(batch[position]) for batch in batches]))
            for position, layer in enumerate(LAYERS)
        }

    with tempfile.TemporaryDirectory() as scratch:
        copy_files = [
            path
            for post_id in eval_ids
            for path in copies(find_image(data.imgs, post_id), Path(scratch))
        ]
        copy_pixels = np.stack(
            [load_image(Path(path), info["image_size"], info["resize"]) for path in copy_files]
        )
        started = time.perf_counter()
        train_vectors = vectors_of(np.stack([image for image, _ in records["train"]]))
        eval_vectors = vectors_of(np.stack([image for image, _ in records["eval"]]))
        copy_vectors = vectors_of(copy_pixels)
        forward_seconds = time.perf_counter() - started
        rows = []
        for layer in LAYERS:
            index = VectorIndex.empty(
                Path(scratch), {"layer": layer}, train_vectors[layer].shape[1]
            )
            count = len(train_vectors[layer])
            index.add(
                [str(row) for row in range(count)],
                ["train"] * count,
                train_vectors[layer],
                [[]] * count,
            )
            found = index.search(eval_vectors[layer], NEIGHBOURS)
            agreement = np.mean(
                [
                    np.mean(
                        [
                            jaccard(tags, train_tags[int(neighbour.post_id)])
                            for neighbour in neighbours
                        ]
                    )
                    for tags, neighbours in zip(eval_tags, found, strict=True)
                ]
            )
            nearest_other = [neighbours[0].score for neighbours in found]
            # Three copies per eval post, in eval order: each against its original.
            originals = np.repeat(eval_vectors[layer], 3, axis=0)
            copy_scores = np.sum(copy_vectors[layer] * originals, axis=1)
            row = {
                "layer": layer,
                "dim": int(train_vectors[layer].shape[1]),
                "tag_jaccard_top10": float(agreement),
                "chance_jaccard": float(chance),
                "copy_similarity_min": float(copy_scores.min()),
                "copy_similarity_p5": float(np.percentile(copy_scores, 5)),
                "copy_similarity_min_by_kind": {
                    kind: float(copy_scores[position::3].min())
                    for position, kind in enumerate(("half", "q60", "crop90"))
                },
                "nearest_other_max": max(nearest_other),
                "nearest_other_p95": float(np.percentile(nearest_other, 95)),
                "forward_seconds_all_layers": forward_seconds,
                # --duplicates at a threshold: copies linked to their original (found), and
                # eval posts linked to a different post (false links).
                "duplicates_at": {
                    threshold: {
                        "copies_found": float(np.mean(copy_scores >= threshold)),
                        "posts_falsely_linked": float(
                            np.mean(np.array(nearest_other) >= threshold)
                        ),
                    }
                    for threshold in THRESHOLDS
                },
            }
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
    print(f"# bench.layers, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}\n")
    print(
        f"Model {folder}; {len(train_tags)} train posts indexed, {len(eval_tags)} eval queries; "
        f"load average at end {os.getloadavg()}\n"
    )
    print(
        "| layer | width | mean tag Jaccard, top 10 | copies: lowest similarity (5th pct) | "
        "nearest other post: highest similarity (95th pct) |"
    )
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['layer']} | {row['dim']} | {row['tag_jaccard_top10']:.3f} | "
            f"{row['copy_similarity_min']:.4f} ({row['copy_similarity_p5']:.4f}) | "
            f"{row['nearest_other_max']:.4f} ({row['nearest_other_p95']:.4f}) |"
        )
    print(f"| random neighbours | | {chance:.3f} | | |")
    print("\n--duplicates: share of copies linked to their original / of posts linked to another\n")
    print("| layer | " + " | ".join(f">= {threshold}" for threshold in THRESHOLDS) + " |")
    print("|---|" + "---|" * len(THRESHOLDS))
    for row in rows:
        cells = (row["duplicates_at"][threshold] for threshold in THRESHOLDS)
        shares = " | ".join(
            f"{c['copies_found']:.2f} / {c['posts_falsely_linked']:.2f}" for c in cells
        )
        print(f"| {row['layer']} | {shares} |")


if __name__ == "__main__":
    main()
