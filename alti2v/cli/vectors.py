"""--vec, --index, --similar and --duplicates on the command line: their flags, and their
results on stdout (vectors to a file, or JSON lines; search results; groups of duplicates)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from alti2v import defaults
from alti2v.cli.common import FlagModes, positive_int, write
from alti2v.progress import Progress

log = logging.getLogger(__name__)

MODES = ("vec", "index", "similar", "duplicates")


def add_modes(modes: argparse._ArgumentGroup) -> None:
    modes.add_argument(
        "--vec",
        nargs="+",
        metavar="FILE",
        help="write each image's feature vector to --vec-out",
    )
    modes.add_argument(
        "--index", action="store_true", help="index every post of the dataset for --similar"
    )
    modes.add_argument(
        "--similar",
        nargs="+",
        metavar="FILE",
        help="print the indexed posts most similar to each image",
    )
    modes.add_argument(
        "--duplicates", action="store_true", help="print groups of near-duplicate indexed posts"
    )


def add_flags(parser: argparse.ArgumentParser, flags: FlagModes) -> None:
    vectors = flags.group(parser, "--vec, --index, --similar, --duplicates", MODES)
    vectors.add_argument(
        "--layer",
        choices=defaults.VECTOR_LAYERS,
        default=defaults.VECTOR_LAYER,
        help="layer read out as the vector: tag logits, the 2048-wide layer or VGG16 block5 "
        "(both mean-pooled); an index is built and queried with one layer; a WD-layout --model "
        "has one, its embedding output (an --export's: logits)",
    )
    vectors.add_argument(
        "--vec-out",
        type=Path,
        default=None,
        modes=("vec",),
        refusal="--vec-out needs --vec",
        help="--vec's .npy (the file order goes beside it as .txt; default DATA_DIR/vectors.npy)",
    )
    vectors.add_argument(
        "--binary",
        action="store_true",
        modes=("vec",),
        refusal="--binary needs --vec",
        help="--vec writes packed sign bits, not float32",
    )
    vectors.add_argument(
        "--neighbours",
        type=positive_int,
        default=defaults.SIMILAR_TOP,
        metavar="N",
        modes=("similar",),
        brief=True,
        aliases=("--top",),
        help="results per --similar query: the most similar posts",
    )
    vectors.add_argument(
        "--duplicate-threshold",
        type=float,
        default=None,
        modes=("duplicates",),
        help="cosine similarity at and above which --duplicates links two posts (default: "
        "measured per layer, "
        + ", ".join(f"{layer} {value}" for layer, value in defaults.DUPLICATE_THRESHOLDS.items())
        + ")",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Nothing beyond the flags' types and the modes they serve."""


def run(args: argparse.Namespace, given: frozenset[str], data, progress: Progress) -> int:
    """The vector modes asked for, in their order, on one model; return the failed inputs."""
    from alti2v.cli.common import load_chosen_model
    from alti2v.vectors.extract import vector_layer

    loaded = load_chosen_model(args, data.models)
    # Settled once for every mode below: a WD folder has one layer, its embedding output.
    args.layer = vector_layer(loaded, args.layer if "layer" in given else None)
    failures = 0
    for mode, run_mode in RUNS.items():
        if getattr(args, mode):
            failures += run_mode(args, data, loaded, progress)
    return failures


def _vec(args: argparse.Namespace, data, loaded, progress: Progress) -> int:
    from alti2v.vectors.extract import (
        VectorExtractor,
        format_vector_json,
        vectors_of_files,
        write_vectors,
    )

    paths, failures = _input_paths(args.vec, args.recursive)
    extractor = VectorExtractor(loaded, args.layer)
    found = vectors_of_files(loaded, extractor, paths, args.batch_size)
    written = []
    for result in progress(found, total=len(paths), unit=" img"):
        if result.error is not None:
            failures += 1
            log.error("%s; no vector", result.error)
        else:
            written.append(result)
        if args.json:
            write(format_vector_json(result, args.binary))
    if not args.json:
        out = args.vec_out or data.vectors
        names = write_vectors(out, written, extractor.width, args.binary)
        kind = "packed sign bits" if args.binary else "float32"
        print(f"vec: {len(written)} vectors ({args.layer}, {kind}) -> {out}, files -> {names}")
    return failures


def _index(args: argparse.Namespace, data, loaded, progress: Progress) -> int:
    from alti2v.vectors.index import update_index

    summary = update_index(data, loaded, args.layer, args.batch_size, progress)
    unreadable = summary["unreadable"]
    print(
        f"index: added {summary['added']}, removed {summary['removed']}, "
        + (f"{unreadable} unreadable, " if unreadable else "")
        + f"{summary['total']} posts{' (rebuilt for this model)' if summary['rebuilt'] else ''}; "
        f"model {summary['model']}, layer {summary['layer']} -> {summary['folder']}"
    )
    return unreadable


def _similar(args: argparse.Namespace, data, loaded, progress: Progress) -> int:
    from alti2v.vectors.index import open_index
    from alti2v.vectors.similar import (
        format_similar_json,
        format_similar_text,
        render_similar_sheet,
        similar_files,
    )

    index = open_index(data, loaded, args.layer)
    paths, failures = _input_paths(args.similar, args.recursive)
    results = []
    for result in similar_files(loaded, index, data, paths, args.neighbours, args.batch_size):
        if result.error is not None:
            failures += 1
            log.error("%s; not searched", result.error)
        if result.error is None or args.json:
            write((format_similar_json if args.json else format_similar_text)(result))
        results.append(result)
    if args.sheet:
        log.info("sheet: %s", render_similar_sheet(results, args.sheet))
    return failures


def _duplicates(args: argparse.Namespace, data, loaded, progress: Progress) -> int:
    from alti2v.vectors.index import open_index
    from alti2v.vectors.similar import (
        duplicate_groups,
        duplicate_threshold,
        format_duplicates_json,
        format_duplicates_text,
    )

    index = open_index(data, loaded, args.layer)
    threshold = duplicate_threshold(args.layer, args.duplicate_threshold)
    groups = duplicate_groups(index, threshold)
    for number, group in enumerate(groups, start=1):
        if args.json:
            write(format_duplicates_json(group, data))
        else:
            write(format_duplicates_text(number, group, data))
    log.info(
        "duplicates: %d groups, %d posts at similarity >= %s",
        len(groups), sum(map(len, groups)), threshold,
    )  # fmt: skip
    return 0


# In the order they run: --similar finds what --index just added.
RUNS = {"vec": _vec, "index": _index, "similar": _similar, "duplicates": _duplicates}


def _input_paths(given: list[str], recursive: bool) -> tuple[list[str], int]:
    """The image files of FILE... arguments (as --pred finds them), and the problems, each
    reported."""
    from alti2v.tag.inputs import find_inputs

    found = find_inputs(given, recursive)
    for problem in found.problems:
        log.error(problem)
    return [str(image.path) for image in found.images], len(found.problems)
