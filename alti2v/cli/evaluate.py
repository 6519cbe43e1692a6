"""--eval on the command line: its flags, and the summary (a few lines, or one JSON object)."""

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
    """Judge the model and print its summary; return how many posts could not be read."""
    from alti2v.cli.common import model_precision
    from alti2v.evaluate.judge import Settings
    from alti2v.evaluate.run import EvalOptions, evaluate, unreadable
    from alti2v.model.saved import find_model, load_model, trained_here

    folder = find_model(args.model, data.models)
    threshold = defaults.EVAL_THRESHOLD if args.threshold is None else args.threshold
    settings = Settings(args.threshold_rule, threshold, args.bootstrap, args.seed)
    options = EvalOptions(args.eval_dir, args.baseline_max, args.weights, settings, args.batch_size)
    loaded = trained_here(
        load_model(folder, model_precision(args)), "--eval",
        "judges models from --train (it reads the dataset's 150x150 pixels)",
    )  # fmt: skip
    loaded = replace(loaded, tta=args.tta)
    summary = evaluate(data, loaded, folder, options, progress)
    failed = unreadable(summary)
    if args.json:
        print(json.dumps(summary))
    else:
        from alti2v.data.layout import ModelFiles

        report = data.evaluation(folder.name).report
        print(summary_text(summary, failed, report, ModelFiles(folder).thresholds))
    return failed


def summary_text(summary: dict, unreadable: int, report: Path, thresholds: Path) -> str:
    """A few lines for a terminal: each scorer's mAP and micro-F1, calibration, the files."""
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
            micro_f1 = ", ".join(
                f"{shown} {_with_interval(*_micro_f1(scores, shown))}" for shown in rules
            )
            lines.append(
                f"  {label:<11} mAP {_with_interval(scores['map'], scores['map_ci95'])}, "
                f"micro-F1 {micro_f1}"
            )
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


def _micro_f1(scores: dict, rule: str) -> tuple[float, list | None]:
    return scores["rules"][rule]["micro_f1"], scores["rules"][rule]["micro_f1_ci95"]


def _with_interval(value: float | None, interval: list | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")
