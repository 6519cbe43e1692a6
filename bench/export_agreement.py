"""How closely an --export'ed model agrees with --pred, and what the WD tools' way of feeding it
costs in mAP.

A model (default: the newest under --data-dir's models/, e.g. `make demo`'s) is exported to the
WD layout, then each image is tagged four ways:

- pred: alt-i2v's --pred with --tta none (the whole image stretched to 150x150 by Pillow's
  filter, Keras);
- kohya: the folder fed exactly as kohya sd-scripts feeds it (white pad to a square, 448 by
  its cv2 call, onnxruntime);
- padded, pred: --pred on the white-padded 448 image that a correct area shrink gives;
- padded, onnx: the export on that same 448 image.

Agreement is the largest and the mean absolute difference in probability, over the real images
in ../shared/real-images (when present) and the held-out posts of the data directory; the mAP of
pred and of kohya is taken over those held-out posts against their true tags.

    python -m bench.export_agreement --data-dir data/demo
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import REPOSITORY, kohya_wd14_input, markdown_header, write_measured

REAL_IMAGES = REPOSITORY.parent / "shared" / "real-images"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/demo"))
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args(argv)

    import onnxruntime

    from alti2v.data.build import split_of
    from alti2v.data.images import load_image, to_model_input
    from alti2v.data.layout import DataDir
    from alti2v.data.posts import iter_posts
    from alti2v.data.records import open_db, read_meta
    from alti2v.export.wd import export_wd
    from alti2v.model.metrics import mean_average_precision
    from alti2v.model.saved import find_model, load_model

    data = DataDir(args.data_dir)
    folder = find_model(args.model, data.models)
    loaded = load_model(folder)
    info = loaded.info
    db = open_db(data.db)
    fraction = (read_meta(db, data.db) or {}).get("eval_fraction", 0.2)
    db.close()
    held_out = [
        post for post in iter_posts(data.imgs) if split_of(post.post_id, fraction) == "eval"
    ]
    real = sorted(path for path in REAL_IMAGES.rglob("*") if path.suffix.lower() in
                  (".png", ".jpg", ".jpeg", ".webp")) if REAL_IMAGES.is_dir() else []  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        wd = Path(scratch) / "wd"
        export_wd(loaded, wd, "general", data.evaluation(folder.name).summary)
        session = onnxruntime.InferenceSession(str(wd / "model.onnx"))
        with (wd / "selected_tags.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        names = [f"rating:{row['name']}" if row["category"] == "9" else row["name"] for row in rows]
        in_model = [name in loaded.tags for name in names]
        order = [
            loaded.tags.index(name) for name, kept in zip(names, in_model, strict=True) if kept
        ]

        def pred(path: Path) -> np.ndarray:
            pixels = load_image(path, info["image_size"], info["resize"])
            return loaded.predict(to_model_input(pixels[None], info["preprocess"]))[0][order]

        def onnx(bgr: np.ndarray) -> np.ndarray:
            return session.run(None, {"input": bgr[None].astype(np.float32)})[0][0][in_model]

        def four_ways(path: Path) -> dict[str, np.ndarray]:
            # Padded white to a centred square, area-shrunk to 448: --pred's WD input.
            square = Image.fromarray(load_image(path, 448, "area", pad=True))
            square_path = Path(scratch) / "square.png"
            square.save(square_path)
            return {
                "pred": pred(path),
                "kohya": onnx(kohya_wd14_input(path)),
                "padded, pred": pred(square_path),
                "padded, onnx": onnx(np.asarray(square, np.float32)[:, :, ::-1]),
            }

        results = {"real": [four_ways(path) for path in real],
                   "held_out": [four_ways(post.image) for post in held_out]}  # fmt: skip
    lines = []
    for name, pairs in (("real images", results["real"]), ("held-out posts", results["held_out"])):
        for left, right in (("pred", "kohya"), ("padded, pred", "padded, onnx")):
            if pairs:
                gap = np.abs(np.array([p[left] - p[right] for p in pairs]))
                lines.append(f"| {name} ({len(pairs)}) | {left} vs {right} | {gap.max():.4f} "
                             f"| {gap.mean():.5f} |")  # fmt: skip
    kept_names = [name for name, kept in zip(names, in_model, strict=True) if kept]
    labels = [set(post.checked_labels()[0] or ()) for post in held_out]
    targets = np.array([[tag in tags for tag in kept_names] for tags in labels], np.float32)
    maps = {way: mean_average_precision(np.array([p[way] for p in results["held_out"]]), targets)
            for way in ("pred", "kohya", "padded, pred", "padded, onnx")}  # fmt: skip
    text = (
        markdown_header(f"--export agreement: {folder.name}, {len(loaded.tags)} tags")
        + "| images | compared | largest difference | mean difference |\n|---|---|---|---|\n"
        + "\n".join(lines)
        + f"\n\nmAP over the {len(held_out)} held-out posts:\n\n| fed as | mAP |\n|---|---|\n"
        + "\n".join(f"| {way} | {value:.4f} |" for way, value in maps.items())
        + f"\n\nkohya against pred: {maps['kohya'] - maps['pred']:+.4f}\n\n```\n"
        + json.dumps({"maps": maps, "real_images": [str(path) for path in real]})
        + "\n```\n"
    )
    print(text)
    write_measured(text, "export-agreement")


if __name__ == "__main__":
    main()
