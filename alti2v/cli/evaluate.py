"""--eval on the command line: its flags, and the summary (a few lines, or one JSON object); with
several --model, the side-by-side table of them and each pair's difference."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from alti2v import defaults
from alti2v.cli.common import FlagModes, positive_int
from alti2v.progress import Progress

MODES = ("eval",)
SCORER_LABELS = {"model": "model", "frequency_prior": "prior", "approach3": "approach 3"}


def add_modes(modes: argparse._ArgumentGroup) -> None:
    modes.add_argument(
        "--eval",
        action="store_true",
        help="judge a model on held-out posts, fit its thresholds",
    )


def add_flags(parser: argparse.ArgumentParser, flags: FlagModes) -> None:
    evaluation = flags.group(parser, "--eval", MODES)
    evaluation.add_argument(
        "--eval-dir",
        type=Path,
        metavar="DIR",
        default=None,
        help="score the posts of this folder (images + .txt tags) instead of the eval split",
    )
    evaluation.add_argument(
        "--baseline-max",
        type=positive_int,
        metavar="N",
        default=defaults.BASELINE_MAX,
        help="training posts the logistic-regression baseline (approach 3) fits on, at most",
    )
    evaluation.add_argument(
        "--bootstrap",
        type=positive_int,
        metavar="N",
        default=defaults.BOOTSTRAP,
        help="resamples of the images for the 95%% confidence intervals",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Nothing beyond the flags' types and the modes they serve."""


def run(args: argparse.Namespace, given: frozenset[str], data, progress: Progress) -> int:
    """Judge the models and print their summary, or their comparison; return how many posts
    could not be read."""
    from alti2v.cli.common import model_precision
    from alti2v.evaluate.judge import Settings
    from alti2v.evaluate.run import EvalOptions, check_distinct, evaluate, unreadable
    from alti2v.model.saved import find_model, load_model

    folders = [find_model(path, data.models) for path in args.models or [None]]
    check_distinct(folders)
    threshold = defaults.EVAL_THRESHOLD if args.threshold is None else args.threshold
    settings = Settings(args.threshold_rule, threshold, args.bootstrap, args.seed)
    # Approach 3 starts from --weights when given, else from what the model started from.
    weights = args.weights if "weights" in given else None
    options = EvalOptions(args.eval_dir, args.baseline_max, weights, settings, args.batch_size)
    precision = model_precision(args)
    models = [replace(load_model(folder, precision), tta=args.tta) for folder in folders]
    evaluation = evaluate(data, models, options, progress)
    failed = unreadable(evaluation.summaries[0])
    if args.json:
        print(json.dumps(evaluation.comparison or evaluation.summaries[0]))
    elif evaluation.comparison:
        print(comparison_text(evaluation.comparison, failed, evaluation.comparison_files.table))
    else:
        from alti2v.data.layout import ModelFiles

        (folder,) = folders
        report = data.evaluation(folder.name).report
        print(summary_text(evaluation.summaries[0], failed, report, ModelFiles(folder).thresholds))
    return failed


def summary_text(summary: dict, unreadable: int, report: Path, thresholds: Path) -> str:
    """A few lines for a terminal: each scorer's mAP and micro-F1, calibration, the files."""
    from alti2v.evaluate.report import plain

    model = summary["model"]
    rule = summary["settings"]["rule"]
    lines = [
        f"eval: {model['images']} images, {model['tags_with_positives']} of {model['tags']} tags "
        f"present; thresholds fitted on {model['fitting_images']}, scored on "
        f"{model['report_images']}"
    ]
    # The constant rule and the chosen one (or f1), both on the half not used for fitting.
    rules = ("constant", "f1" if rule == "constant" else rule)
    for name, label in SCORER_LABELS.items():
        if name in summary:
            scores = summary[name]
            micro_f1 = ", ".join(f"{shown} {plain(*_micro_f1(scores, shown))}" for shown in rules)
            lines.append(
                f"  {label:<11} mAP {plain(scores['map'], scores['map_ci95'])}, micro-F1 {micro_f1}"
            )
    if "approach3_skipped" in summary:
        lines.append(f"  approach 3 skipped: {summary['approach3_skipped']}")
    calibration = model["calibration"]
    saved = "saved" if calibration["temperature_improves"] else "not saved: no better"
    lines.append(
        f"  calibration: ECE {calibration['ece']:.4f}, {calibration['ece_after_temperature']:.4f} "
        f"at temperature {calibration['fitted_temperature']:.2f} ({saved})"
    )
    if model["rating"]:
        lines.append(f"  rating: {model['rating']['accuracy']:.3f} accuracy as a 4-way choice")
    if unreadable:
        lines.append(f"  {unreadable} posts could not be read (named above)")
    lines.append(f"  report -> {report}")
    lines.append(f"  thresholds -> {thresholds}")
    return "\n".join(lines)


def comparison_text(comparison: dict, unreadable: int, table: Path) -> str:
    """The side-by-side table of the models and baselines, then each pair's differences."""
    from alti2v.evaluate.report import comparison_rows, plain

    rule = comparison["settings"]["rule"]
    lines = [
        f"eval: {comparison['images']} images, {len(comparison['models'])} models against "
        f"{comparison['truth_tags']} true tags; thresholds fitted on "
        f"{comparison['fitting_images']}, scored on {comparison['report_images']}"
    ]
    headers, rows = comparison_rows(comparison)
    widths = [max(len(row[column]) for row in [headers, *rows]) for column in range(len(headers))]
    for row in [headers, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    for pair in comparison["pairs"]:
        lines.append(
            f"  {pair['second']} - {pair['first']}, on the {pair['tags']} tags both cover "
            f"({pair['tags_with_positives']} with a positive):"
        )
        for label, key in (("mAP", "map"), (f"micro-F1 {rule}", "micro_f1")):
            difference = pair[key]
            shown = plain(difference["difference"], difference["difference_ci95"], "+")
            lines.append(f"    {label}: {shown}; {difference['verdict']}")
    if unreadable:
        lines.append(f"  {unreadable} posts could not be read (named above), for every model")
    lines.append(f"  comparison -> {table}")
    return "\n".join(lines)


def _micro_f1(scores: dict, rule: str) -> tuple[float, list | None]:
    return scores["rules"][rule]["micro_f1"], scores["rules"][rule]["micro_f1_ci95"]
