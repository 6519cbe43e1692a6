"""`make demo`: the whole pipeline on synthetic illustrations, each step printed and timed, then a
trained model's tags for held-out posts next to their true tags.

    python -m synthetic.demo --pipeline --data-dir data/demo --weights imagenet

Each step is the command a user would type. The demo trains the real model with the defaults
but two, chosen by measurement to finish in a few minutes on a 2-core laptop CPU
(bench/demo_speed.py, bench/measured/demo-*.txt): `--cache-features` (the frozen layers run
once per image, not once per epoch), and 450 posts for 4 epochs instead of 600 for 5 (199 s
against 478 s under an AVX2-only oneDNN, 63 of 78 predicted tags right against 67 of 78).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import synthetic
from alti2v import defaults
from alti2v.data.posts import iter_posts

POSTS = 450  # synthetic training posts (20% of them held out as the eval split)
SAMPLES = 8  # further posts, from another seed, tagged at the end
EPOCHS = 4
# Fast on a slow CPU: the frozen layers run once per image. The cache holds the unchanged
# images' features, so the demo trains without --augment (at some cost in quality).
TRAIN_FLAGS = ("--cache-features", "--augment", "none")
SAMPLE_SEED_OFFSET = 1  # the samples are new scenes, not copies of training posts


def run_step(title: str, command: list[str]) -> float:
    """Print `command` (a Python one) as a user would type it, run it, and say how long it took."""
    print(f"\n== {title}\n$ python {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    returncode = subprocess.run(command).returncode
    if returncode:
        # The step has printed its own one-line error; a traceback here would bury it.
        raise SystemExit(f"demo: stopped, `{title}` failed (exit {returncode}); see above")
    seconds = time.perf_counter() - started
    print(f"   ({seconds:.1f} s)", flush=True)
    return seconds


def show_tags(data_dir: Path, samples: Path, threshold: float, precision: str) -> None:
    """Each sample's tags at `threshold` against its true tags, then a contact sheet of them."""
    from alti2v.model.precision import choose_precision
    from alti2v.model.saved import find_model, load_model
    from alti2v.tag.collection import sheet_cell
    from alti2v.tag.inputs import InputImage
    from alti2v.tag.predict import predict_images
    from alti2v.tag.select import Tag, ranked
    from alti2v.tag.sheet import render_sheet

    folder = find_model(None, data_dir / "models")
    chosen = choose_precision(precision)
    loaded = replace(load_model(folder, chosen.name), tta=defaults.TTA)  # as --pred tags them
    posts = [post for post in iter_posts(samples) if post.image]
    print(f"model {folder}: {len(loaded.tags)} tags, in {chosen}; tags with prob >= {threshold} "
          "shown")  # fmt: skip
    images = [InputImage(post.image, samples) for post in posts]
    hits = shown = total_true = 0
    cells = []
    for post, prediction in zip(posts, predict_images(loaded, images), strict=True):
        truth = set(post.labels())
        probabilities = prediction.probabilities
        predicted = [
            (loaded.tags[index], float(probabilities[index]))
            for index in ranked(probabilities, mask=probabilities >= threshold)
        ]
        cells.append(
            sheet_cell(prediction.image, [Tag(t, p, "") for t, p in predicted], loaded.tags)
        )
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
    sheet = render_sheet(cells, samples / "sheet.png")
    print(f"contact sheet of these images, their top tags and true tags: {sheet}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path("data/demo"), help="demo folder")
    parser.add_argument("--weights", default=defaults.WEIGHTS, help="VGG16 weights for --train")
    parser.add_argument("--posts", type=int, default=POSTS, help="synthetic training posts")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs")
    parser.add_argument("--threshold", type=float, default=0.5, help="tags shown from this prob")
    parser.add_argument(
        "--precision",
        choices=defaults.PRECISIONS,
        default=defaults.PRECISION,
        help="--train's and the tagging's (auto: bfloat16 where the machine is faster in it)",
    )
    parser.add_argument(
        "--pipeline",
        action="store_true",
        help="draw the posts and run the pipeline first (else only tag --samples)",
    )
    parser.add_argument(
        "--samples", type=Path, default=None, help="posts to tag (default: DATA_DIR/samples)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    samples = args.samples or args.data_dir / "samples"
    steps = {}
    started = time.perf_counter()
    if args.pipeline:
        print(f"== draw {args.posts} synthetic posts and {SAMPLES} held-out samples", flush=True)
        drawing = time.perf_counter()
        synthetic.generate(args.data_dir / "imgs", args.posts, seed=0)
        synthetic.generate(samples, SAMPLES, seed=SAMPLE_SEED_OFFSET)
        steps["draw posts"] = time.perf_counter() - drawing
        print(f"   ({steps['draw posts']:.1f} s)", flush=True)
        cli = [sys.executable, "alt_i2v.py", "--data-dir", str(args.data_dir)]
        steps["--maeshori"] = run_step("the tag vocabulary", [*cli, "--maeshori"])
        steps["--build"] = run_step("decode and pack the images into LevelDB", [*cli, "--build"])
        steps["--train"] = run_step(
            f"train VGG16 + the new head for {args.epochs} epochs",
            [
                *cli,
                "--train",
                "--epochs",
                str(args.epochs),
                "--weights",
                args.weights,
                "--precision",
                args.precision,
                *TRAIN_FLAGS,
            ],
        )
        print("\n== tag held-out samples", flush=True)
    shown_at = time.perf_counter()
    show_tags(args.data_dir, samples, args.threshold, args.precision)
    steps["tag samples"] = time.perf_counter() - shown_at
    if args.pipeline:
        timings = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in steps.items())
        print(f"\ndemo: {time.perf_counter() - started:.0f} s in all ({timings})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
