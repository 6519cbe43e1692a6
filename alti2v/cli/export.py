"""--export on the command line: its flags, the destination refused before any work when it
holds files, and the summary line."""

from __future__ import annotations

import argparse
from pathlib import Path

from alti2v import defaults
from alti2v.cli.common import FlagModes
from alti2v.progress import Progress

MODES = ("export",)


def add_modes(modes: argparse._ArgumentGroup) -> None:
    modes.add_argument(
        "--export",
        type=Path,
        metavar="DIR",
        help="write the model to DIR as a WD tagger (ONNX) for other tools",
    )


def add_flags(parser: argparse.ArgumentParser, flags: FlagModes) -> None:
    export = flags.group(parser, "--export", MODES)
    export.add_argument(
        "--export-other-tags",
        choices=defaults.EXPORT_OTHER_TAGS,
        default=defaults.EXPORT_OTHER_TAGS[0],
        help="copyright, artist and meta tags, which the layout has no place for: fold them "
        "into general, or drop them",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A destination that holds anything is refused: nothing of it is replaced."""
    destination = args.export
    if destination is None:
        return
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        parser.error(f"--export {destination}: exists and is not an empty folder; give a new one")


def run(args: argparse.Namespace, given: frozenset[str], data, progress: Progress) -> int:
    from alti2v.export.wd import export_wd
    from alti2v.model.saved import find_model, load_model, trained_here

    folder = find_model(args.model, data.models)
    loaded = trained_here(load_model(folder), "--export", "exports models from --train")
    written = export_wd(
        loaded,
        args.export,
        args.export_other_tags,
        data.evaluation(folder.name).summary,
    )
    rows = written["rows"]
    print(
        f"export: {folder} -> {args.export}: {rows['rating']} ratings, {rows['general']} general, "
        f"{rows['character']} character tags"
        + (f", {written['dropped']} left out" if written["dropped"] else "")
        + ("; with --eval's thresholds" if written["thresholds"] else "; no --eval thresholds")
        + f" ({written['seconds']} s)"
    )
    return 0
