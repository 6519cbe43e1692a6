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
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from alti2v.models import find_model, load_model
    from alti2v.predict import predict_files

    folder = find_model(None, args.data_dir / "models")
    loaded = load_model(folder)
    posts = [post for post in iter_posts(args.samples) if post.image]
    print(f"model {folder}: {len(loaded.tags)} tags; tags with prob >= {args.threshold} shown")
    predictions = predict_files(loaded, [str(post.image) for post in posts], top_k=0)
    hits = shown = total_true = 0
    for post, prediction in zip(posts, predictions, strict=True):
        truth = set(post.labels())
        predicted = [(tag, prob) for tag, prob in prediction.tags if prob >= args.threshold]
        marks = [f"{tag} {prob:.2f} {'ok' if tag in truth else 'WRONG'}" for tag, prob in predicted]
        missed = sorted(truth & set(loaded.tags) - {tag for tag, _ in predicted})
        print(f"\n== {prediction.image}")
        print(f"  true tags: {' '.join(post.labels())}")
        print(f"  predicted: {', '.join(marks) or '-'}")
        print(f"  missed:    {' '.join(missed) or '-'}")
        hits += sum(tag in truth for tag, _ in predicted)
        shown += len(predicted)
        total_true += len(truth & set(loaded.tags))
    print(f"\n{hits} of {shown} predicted tags are right; {hits} of {total_true} true tags found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
