"""Quality benchmark: held-out mAP and micro-F1 of the full pipeline on synthetic illustrations.

Generates --train-count synthetic posts for training and --heldout-count others, runs
`alt_i2v.py --maeshori --build --train` on them through the CLI's own parser, checks and
`main`, and scores the held-out predictions (plain and with flip test-time augmentation) against
two baselines on the same posts: the frequency prior (every image scored by each tag's training
frequency) and the seed's "approach 3" (alti2v.model.linear's logistic regression per tag on
alti2v.evaluate.baselines' frozen, average-pooled VGG16 features; cached per data seed, since it
does not depend on the training settings). One JSON line on stdout; the CLI's lines go to stderr.

Every flag not listed under --help is the CLI's (`alt_i2v.py --help`: --epochs, --augment,
--backbone-lr-scale, ...), parsed and checked as the CLI checks it, so what --train refuses this
refuses too. Only the defaults differ: --epochs 5, --eval-fraction 0 (every training post is
trained on; the held-out posts are the test), --weights the offline copy when there is one.

    python -m bench.quality                            # the defaults, 600 + 200 images, 5 epochs
    python -m bench.quality --augment none --dropout 0.3
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

import synthetic
from alti2v import defaults
from alti2v.cli import parse_args as cli_parse_args
from alti2v.data.images import load_image, to_model_input
from alti2v.data.layout import DataDir
from alti2v.data.posts import iter_posts
from alti2v.data.vocabulary import load_vocabulary_meta
from alti2v.model.metrics import mean_average_precision, micro_f1
from alti2v.model.precision import POLICIES as PRECISIONS
from bench.common import DEFAULT_WEIGHTS, describe_machine, run_cli, training_history

HELDOUT_SEED_OFFSET = 1  # the held-out posts come from another seed, so they are new scenes
TRAIN_COUNT = 600  # synthetic posts to train on
HELDOUT_COUNT = 200  # synthetic posts to score
# The run's held-out probabilities, in labelled_posts' order, kept in its --work folder for
# bench.tag_groups, bench.tag_curves and bench.miss_sheet.
HELDOUT_SCORES = "heldout-scores.npy"
EPOCHS = 5  # --epochs unless given: the recipe search's budget
# The CLI flags this benchmark sets itself, before the user's (a flag given later wins).
CLI_DEFAULTS = ["--epochs", str(EPOCHS), "--eval-fraction", "0", "--weights", DEFAULT_WEIGHTS]
# What a run records of the CLI's settings under "config": the --build and --train ones.
BUILD_SETTINGS = ("resize", "eval_fraction", "image_size")
OTHER_MODES = ("eval", "pred", "vec", "index", "similar", "duplicates")


def parse_args(
    argv: list[str] | None = None,
) -> tuple[argparse.Namespace, argparse.Namespace, list[str]]:
    """(this benchmark's own arguments, the CLI's parsed and checked ones, the CLI's argv). A
    flag the CLI refuses ends the run here with the CLI's message and exit status 2."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Every other flag is alt_i2v.py's (--maeshori --build --train), checked by its "
        f"parser; set here unless given: {' '.join(CLI_DEFAULTS)}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,  # a prefix of a CLI flag must reach the CLI, not match one here
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("bench/results/quality"),
        help="scratch folder, the CLI's --data-dir (removed and rebuilt, except the image cache)",
    )
    parser.add_argument("--train-count", type=int, default=TRAIN_COUNT, help="training posts")
    parser.add_argument("--heldout-count", type=int, default=HELDOUT_COUNT, help="held-out posts")
    parser.add_argument("--seed", type=int, default=7, help="synthetic data seed")
    parser.add_argument(
        "--train-seed", type=int, default=None, help="the CLI's --seed (None: --seed's)"
    )
    parser.add_argument("--label", default="", help="name of this run in the JSON line")
    own, rest = parser.parse_known_args(argv)
    train_seed = own.seed if own.train_seed is None else own.train_seed
    # The modes, the folder and the seed come last, so that they win over anything in `rest`.
    cli_argv = [*CLI_DEFAULTS, *rest, "--maeshori", "--build", "--train", "--quiet",
                "--data-dir", str(own.work), "--seed", str(train_seed)]  # fmt: skip
    cli, _ = cli_parse_args(cli_argv)
    modes = [f"--{mode}" for mode in OTHER_MODES if getattr(cli, mode)]
    if modes:
        parser.error(f"{' '.join(modes)}: this runs --maeshori --build --train only")
    return own, cli, cli_argv


def recorded_config(own: argparse.Namespace, cli: argparse.Namespace) -> dict:
    """The run's settings as the JSON line's "config": the data, then the CLI's --build
    settings and the TrainConfig it trained with ("seed" is the data's, "train_seed" --train's)."""
    from alti2v.cli.train import config_from

    trained = {name: value for name, value in asdict(config_from(cli)).items() if name != "seed"}
    return {
        "train_count": own.train_count,
        "heldout_count": own.heldout_count,
        "seed": own.seed,
        **trained,
        **{name: getattr(cli, name) for name in BUILD_SETTINGS},
        "train_seed": own.train_seed,
    }


def image_cache(parent: Path, seed: int, train_count: int, heldout_count: int) -> Path:
    """The folder of a data seed's training and held-out posts, drawn on first use."""
    cache = parent / f"quality-images-seed{seed}"
    if (train_count, heldout_count) != (TRAIN_COUNT, HELDOUT_COUNT):
        # Another size is another set of posts, with its own approach-3 scores.
        cache = cache.with_name(f"{cache.name}-{train_count}+{heldout_count}")
    synthetic.generate(cache / "train", train_count, seed=seed)
    synthetic.generate(cache / "heldout", heldout_count, seed=seed + HELDOUT_SEED_OFFSET)
    return cache


def posts_of(work: Path) -> Path:
    """The image cache (train/ and heldout/) a bench.quality --work trained on."""
    return DataDir(work).imgs.resolve().parent


def labelled_posts(folder: Path, tags: list[str]) -> tuple[list[str], np.ndarray]:
    """The image paths of a folder's posts and their (posts, tags) multi-hot targets."""
    from alti2v.data.vocabulary import multi_hot

    index = {tag: position for position, tag in enumerate(tags)}
    posts = list(iter_posts(folder))
    labels = [[index[label] for label in post.labels() if label in index] for post in posts]
    return [str(post.image) for post in posts], multi_hot(labels, len(tags))


def fitted_baseline(cache: Path, tags: list[str], name: str, features) -> np.ndarray:
    """(held-out posts, tags) scores of a logistic regression per tag on `features(paths)`,
    fitted on every training post; computed once per data seed and kept beside its images."""
    from alti2v.model.linear import fit_regressions

    scores_path = cache / f"{name}-{len(tags)}tags.npy"
    if scores_path.exists():
        return np.load(scores_path)
    train_paths, train_targets = labelled_posts(cache / "train", tags)
    heldout_paths, _ = labelled_posts(cache / "heldout", tags)
    regressions = fit_regressions(features(train_paths), train_targets.astype(bool))
    scores = regressions.predict(features(heldout_paths))
    temporary = scores_path.with_suffix(".tmp.npy")
    np.save(temporary, scores)
    temporary.replace(scores_path)
    return scores


def approach3_scores(cache: Path, tags: list[str], weights: str) -> np.ndarray:
    """(held-out posts, tags) scores of approach 3: the regressions on frozen, average-pooled
    VGG16 features."""
    from alti2v.evaluate.baselines import feature_extractor

    @functools.cache
    def extractor():
        return feature_extractor(defaults.IMAGE_SIZE, weights)

    def features(paths: list[str]) -> np.ndarray:
        pixels = np.stack([load_image(Path(path), defaults.IMAGE_SIZE) for path in paths])
        return extractor().predict(to_model_input(pixels, defaults.PREPROCESS), verbose=0)

    return fitted_baseline(cache, tags, "approach3", features)


def main(argv: list[str] | None = None) -> int:
    own, cli, cli_argv = parse_args(argv)
    from alti2v.model.saved import find_model, load_model
    from alti2v.tag.inputs import InputImage
    from alti2v.tag.predict import predict_images

    cache = image_cache(own.work.parent, own.seed, own.train_count, own.heldout_count)
    shutil.rmtree(own.work, ignore_errors=True)
    data = DataDir(own.work)
    own.work.mkdir(parents=True)
    data.imgs.symlink_to((cache / "train").resolve())

    started = time.perf_counter()
    run_cli(*cli_argv)
    train_seconds = time.perf_counter() - started

    folder = find_model(None, data.models)
    loaded = load_model(folder)
    paths, targets = labelled_posts(cache / "heldout", loaded.tags)
    images = [InputImage(Path(path), Path(path).parent) for path in paths]

    def heldout_scores(tried) -> np.ndarray:
        return np.stack([prediction.probabilities for prediction in predict_images(tried, images)])

    scores, flipped = (heldout_scores(replace(loaded, tta=tta)) for tta in ("none", "flip"))
    # The same float32 weights predicting in each precision: what --pred's precision costs.
    by_precision = {
        name: round(mean_average_precision(heldout_scores(load_model(folder, name)), targets), 4)
        for name in PRECISIONS
    }
    np.save(own.work / HELDOUT_SCORES, scores)
    approach3 = mean_average_precision(approach3_scores(cache, loaded.tags, cli.weights), targets)
    vocabulary = load_vocabulary_meta(data.vocab_meta)
    frequency = (
        np.array([vocabulary["counts"][tag] for tag in loaded.tags]) / vocabulary["num_posts_used"]
    )
    prior = np.broadcast_to(frequency, targets.shape)
    result = {
        "label": own.label,
        "heldout_map": round(mean_average_precision(scores, targets), 4),
        "heldout_micro_f1": round(micro_f1(scores, targets), 4),
        "heldout_map_flip_tta": round(mean_average_precision(flipped, targets), 4),
        "heldout_map_by_prediction_precision": by_precision,
        "trained_precision": loaded.info["precision"],
        "heldout_micro_f1_flip_tta": round(micro_f1(flipped, targets), 4),
        "approach3_map": round(approach3, 4),
        "prior_map": round(mean_average_precision(prior, targets), 4),
        "prior_micro_f1": round(micro_f1(prior, targets), 4),
        "num_tags": len(loaded.tags),
        "train_images": own.train_count,
        "heldout_images": len(paths),
        "pipeline_seconds": round(train_seconds, 1),
        "epochs_trained": len(training_history(data)),
        "config": recorded_config(own, cli),
        "machine": describe_machine(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
