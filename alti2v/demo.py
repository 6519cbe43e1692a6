"""Show a trained model's tags for held-out posts next to their true tags (`make demo`).

python -m alti2v.demo --data-dir data/demo --samples data/demo/samples
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from alti2v import defaults
from alti2v.layout import iter_posts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(defaults.DATA_DIR),
        help="data directory holding the trained model",
    )
    parser.add_argument("--samples", type=Path, required=True, help="folder of posts to tag")
    parser.add_argument("--threshold", type=float, default=0.5, help="tags shown from this prob")
    parser.add_argument(
        "--sheet", type=Path, default=None, help="contact sheet (SAMPLES/sheet.png)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from alti2v.inputs import InputImage
    from alti2v.models import find_model, load_model
    from alti2v.predict import predict_images
    from alti2v.sheet import render_sheet
    from alti2v.tagfilter import Tag
    from alti2v.tagging import sheet_cell

    folder = find_model(None, args.data_dir / "models")
    loaded = load_model(folder)
    posts = [post for post in iter_posts(args.samples) if post.image]
    print(f"model {folder}: {len(loaded.tags)} tags; tags with prob >= {args.threshold} shown")
    images = [InputImage(post.image, args.samples) for post in posts]
    hits = shown = total_true = 0
    cells = []
    for post, prediction in zip(posts, predict_images(loaded, images), strict=True):
        truth = set(post.labels())
        probabilities = prediction.probabilities.tolist()
        ranked = sorted(zip(loaded.tags, probabilities, strict=True), key=lambda item: -item[1])
        predicted = [(tag, prob) for tag, prob in ranked if prob >= args.threshold]
        tags = [Tag(tag, prob, "") for tag, prob in predicted]
        cells.append(sheet_cell(prediction.image, tags, loaded.tags))
        marks = [f"{tag} {prob:.2f} {'ok' if tag in truth else 'WRONG'}" for tag, prob in predicted]
        missed = sorted(truth & set(loaded.tags) - {tag for tag, _ in predicted})
        print(f"\n== {post.image}")
        print(f"  true tags: {' '.join(post.labels())}")
        print(f"  predicted: {', '.join(marks) or '-'}")
        print(f"  missed:    {' '.join(missed) or '-'}")
        hits += sum(tag in truth for tag, _ in predicted)
        shown += len(predicted)
        total_true += len(truth & set(loaded.tags))
    print(f"\n{hits} of {shown} predicted tags are right; {hits} of {total_true} true tags found")
    sheet = render_sheet(cells, args.sheet or args.samples / "sheet.png")
    print(f"contact sheet of these images, their top tags and true tags: {sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
