"""--pred on the command line: inputs, thresholds, tag lists and output flags, their checks, and
the results written to stdout as each image is done."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from alti2v import defaults
from alti2v.cli.common import FlagModes, non_negative_int, probability, write
from alti2v.progress import SILENT, Progress
from alti2v.tag.captions import CAPTION_MODES
from alti2v.tag.outputs import FILE_FORMATS, FORMATS
from alti2v.tag.thresholds import RULES

log = logging.getLogger(__name__)

MODES = ("pred",)
# The modes that load a model: --model picks it for each of them.
MODEL_MODES = ("eval", "export", "pred", "vec", "index", "similar", "duplicates")


def add_modes(modes: argparse._ArgumentGroup) -> None:
    modes.add_argument(
        "--pred",
        nargs="+",
        metavar="FILE",
        help="print the tags of images (a folder: its images)",
    )


def add_flags(parser: argparse.ArgumentParser, flags: FlagModes) -> None:
    inputs = flags.group(parser, "--pred: inputs and model", MODES)
    inputs.add_argument(
        "--model",
        type=Path,
        action="append",
        dest="models",
        metavar="DIR",
        default=None,
        modes=MODEL_MODES,
        brief=True,
        help="model folder, model.keras or WD folder (default: the newest in "
        "DATA_DIR/models); --eval compares several",
    )
    inputs.add_argument(
        "--recursive",
        action="store_true",
        modes=("pred", "vec", "similar"),
        brief=True,
        help="also tag images in subfolders of a folder",
    )
    inputs.add_argument(
        "--tta",
        choices=("none", "flip"),
        default=defaults.TTA,
        modes=("eval", "pred"),
        help="test-time augmentation (--pred, --eval): flip scores each image and its mirror "
        "image and averages them, at twice the compute",
    )
    inputs.add_argument(
        "--pred-workers",
        type=non_negative_int,
        default=defaults.DECODE_WORKERS,
        aliases=("--decode-workers",),
        help="image-decoding threads running beside the model; 0 means one per CPU core",
    )

    thresholds = flags.group(parser, "--pred: which tags an image gets", MODES)
    thresholds.add_argument(
        "--threshold",
        type=probability,
        metavar="P",
        default=None,
        modes=("eval", "pred"),
        brief=True,
        help="--pred keeps tags at least this likely; --eval's constant rule "
        f"(defaults: --pred {defaults.THRESHOLD}, --eval {defaults.EVAL_THRESHOLD})",
    )
    thresholds.add_argument(
        "--threshold-rule",
        choices=RULES,
        default=defaults.THRESHOLD_RULE,
        modes=("eval", "pred"),
        help="constant (--threshold), mcut (per image, at the largest gap), or per-tag "
        "thresholds fitted by --eval: f0.5, f1, f2, category (--eval: the rule its per_tag.csv "
        "and gallery show)",
    )
    for category in ("general", "character"):
        thresholds.add_argument(
            f"--{category}-threshold",
            type=probability,
            default=None,
            help=f"this threshold for {category} tags instead of the rule's (default: the rule)",
        )
    thresholds.add_argument(
        "--top-k",
        type=int,
        default=defaults.TOP_K,
        metavar="N",
        brief=True,
        aliases=("--max-tags",),
        help="at most this many of the model's tags per image, 0 for all (a --rating "
        "first|last tag and the --always-first tags come on top)",
    )

    tags = flags.group(parser, "--pred: tag lists, for every format", MODES)
    tags.add_argument(
        "--spaces",
        action="store_true",
        help="write long hair, not long_hair (kaomoji such as ^_^ keep their underscores)",
    )
    tags.add_argument(
        "--escape-parens", action="store_true", help="write \\( and \\) for prompt syntax"
    )
    tags.add_argument(
        "--exclude", nargs="+", action="extend", default=[], metavar="TAG",
        help="leave these tags out (either spelling)",
    )  # fmt: skip
    tags.add_argument(
        "--exclude-file", type=Path, default=None, metavar="FILE",
        help="leave out the tags in FILE (one per line or comma-separated; # comments)",
    )  # fmt: skip
    tags.add_argument(
        "--include-only", nargs="+", action="extend", default=[], metavar="TAG",
        help="keep only these tags (default: every tag)",
    )  # fmt: skip
    tags.add_argument(
        "--replace", nargs="+", action="extend", default=[], metavar="OLD=NEW",
        help="write NEW instead of OLD",
    )  # fmt: skip
    tags.add_argument(
        "--replace-file", type=Path, default=None, metavar="FILE",
        help="OLD=NEW lines, as --replace",
    )  # fmt: skip
    tags.add_argument(
        "--sort", choices=("prob", "alpha"), default=defaults.SORT,
        help="order tags by probability or alphabetically",
    )  # fmt: skip
    tags.add_argument(
        "--rating", choices=("inline", "first", "last", "none"), default=defaults.RATING,
        help="the most likely of the rating tags ranked like any tag (when its threshold keeps "
        "it), placed first or last (always), or none",
    )  # fmt: skip
    tags.add_argument(
        "--character-first", action="store_true", help="character tags before the others"
    )
    tags.add_argument(
        "--always-first", nargs="+", action="extend", default=[], metavar="TAG",
        help="put these tags first on every image (a trigger word)",
    )  # fmt: skip

    output = flags.group(parser, "--pred: output", MODES)
    output.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default=defaults.FORMAT,
        metavar="FORMAT",
        brief=True,
        help="text lines, json lines, csv rows, caption files or sidecar .json files",
    )
    output.add_argument(
        "--json",
        action="store_true",
        modes=("eval", "pred", "vec", "similar", "duplicates"),
        brief=True,
        help="JSON on stdout: --pred one object per image per line (--format json); --eval "
        "the summary as one object; --vec, --similar, --duplicates one object per line",
    )
    output.add_argument(
        "--with-probs", action="store_true", help="captions write (tag:0.87) instead of tag"
    )
    output.add_argument(
        "--caption-ext", default=defaults.CAPTION_EXT, help="caption file: image stem + this"
    )
    output.add_argument(
        "--caption-separator", default=defaults.CAPTION_SEPARATOR, help="between caption tags"
    )
    output.add_argument(
        "--caption-mode",
        choices=CAPTION_MODES,
        default=defaults.CAPTION_MODE,
        help="an existing caption: skip it, overwrite it, or keep it as it is and append/prepend "
        "the new tags (a comma-separated tag list gets only the tags it lacks)",
    )
    output.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="write captions and sidecars here, mirroring the input tree (default: beside "
        "each image)",
    )
    output.add_argument(
        "--skip-unchanged",
        action="store_true",
        help="pass over images whose output this model made with these settings from the same "
        "bytes (a caption run keeps a sidecar as the record)",
    )
    output.add_argument(
        "--sheet",
        type=Path,
        default=None,
        metavar="PNG",
        modes=("pred", "similar"),
        refusal="--sheet needs --pred or --similar",
        brief=True,
        help=f"--pred: draw the first {defaults.SHEET_MAX_IMAGES} images and their tags (true tags "
        "from a .txt beside an image marked); --similar: the queries and their results",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The values --pred cannot use; also reads the tag lists, so a missing file ends here.
    --model may come more than once for --eval alone; `args.model` is the first."""
    models = args.models or []
    one_model = [f"--{mode}" for mode in MODEL_MODES if mode != "eval" and getattr(args, mode)]
    if len(models) > 1 and one_model:
        parser.error(
            f"--model given {len(models)} times: {' and '.join(one_model)} takes one "
            "(only --eval compares several)"
        )
    args.model = models[0] if models else None
    if args.top_k < 0:
        parser.error("--top-k must be 0 (all) or more")
    if args.json:
        args.format = "json"
    if not args.caption_ext.startswith(".") or "/" in args.caption_ext:
        parser.error(
            f"--caption-ext must be a file extension such as .txt, not {args.caption_ext!r}"
        )
    if args.format not in FILE_FORMATS:
        for flag, value in (
            ("--skip-unchanged", args.skip_unchanged),
            ("--output-dir", args.output_dir),
        ):
            if value:
                parser.error(f"{flag} needs --format caption or sidecar")
    try:
        args.tag_settings = _tag_settings(args)
    except (OSError, ValueError) as error:
        parser.error(str(error))


def _tag_settings(args: argparse.Namespace):
    from alti2v.tag.select import TagSettings, parse_replacement, read_tag_list, tag_key

    exclude = list(args.exclude)
    if args.exclude_file:
        exclude += read_tag_list(args.exclude_file.read_text(encoding="utf-8"))
    replacements = list(args.replace)
    if args.replace_file:
        replacements += read_tag_list(args.replace_file.read_text(encoding="utf-8"))
    return TagSettings(
        spaces=args.spaces,
        escape_parens=args.escape_parens,
        exclude=frozenset(map(tag_key, exclude)),
        include_only=frozenset(map(tag_key, args.include_only)),
        replace=dict(map(parse_replacement, replacements)),
        max_tags=args.top_k,
        sort=args.sort,
        rating=args.rating,
        character_first=args.character_first,
        always_first=tuple(args.always_first),
    )


def run(args: argparse.Namespace, given: frozenset[str], data, progress: Progress) -> int:
    """Tag the inputs, writing each result to stdout as it is done; return the failed inputs."""
    from alti2v.cli.common import load_chosen_model
    from alti2v.tag.captions import CaptionSettings
    from alti2v.tag.collection import PredOptions, Thresholds, tag_collection
    from alti2v.tag.inputs import find_inputs

    loaded = replace(load_chosen_model(args, data.models), tta=args.tta)
    folder = loaded.folder
    log.info("pred: model %s (%d tags)", folder, len(loaded.tags))
    options = PredOptions(
        format=args.format, tags=args.tag_settings,
        thresholds=Thresholds(
            args.threshold_rule,
            defaults.THRESHOLD if args.threshold is None else args.threshold,
            args.general_threshold,
            args.character_threshold,
        ),
        captions=CaptionSettings(
            args.caption_ext, args.caption_separator, args.caption_mode, args.output_dir,
            args.skip_unchanged,
        ),
        with_probs=args.with_probs, batch_size=args.batch_size,
        workers=args.pred_workers, sheet=args.sheet,
    )  # fmt: skip
    found = find_inputs(args.pred, args.recursive)
    # A bar between result lines on one terminal only garbles them; show it when stdout goes
    # elsewhere (a file, a pipe), where it is the only sign of progress.
    bars = SILENT if sys.stdout.isatty() else progress
    return write_all(tag_collection(loaded, folder, found, options, bars))


def write_all(texts) -> int:
    """Write each text a generator yields as it comes; return the value it ends with."""
    while True:
        try:
            write(next(texts))
        except StopIteration as done:
            return done.value
