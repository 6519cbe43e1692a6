"""--eval: score models on held-out posts, fit their thresholds, compare them with the baselines
and, given several, with each other.

The posts (`alti2v.evaluate.posts`) are the eval split of the LevelDB dataset or any folder in
the data layout (`--eval-dir`). They are scored in batches into float16 matrices memory-mapped
under `eval/<first model>/.scratch/` (removed when the run ends), so memory stays bounded
whatever their number; `alti2v.evaluate.judge` then reads those a block at a time. Each model
is scored on the tags of its vocabulary that have truth (`alti2v.evaluate.names`); the frequency
prior and approach 3 (`alti2v.evaluate.baselines`) once, on the dataset's vocabulary. Outputs
per model (`alti2v.data.layout.EvalFiles`): summary.json, per_tag.csv, the pictures and
report.html (`alti2v.evaluate.report`), and `thresholds.json` beside the model (a WD folder's
too, keyed by the hash of its CSV's vocabulary). Several models are compared pair by pair
(`alti2v.evaluate.compare`) into `eval/compare-<time>/` (`ComparisonFiles`)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from alti2v import defaults
from alti2v.data.files import atomic_write_json, atomic_write_text
from alti2v.data.images import InputSpec, to_model_input
from alti2v.data.layout import ComparisonFiles, DataDir, EvalFiles, ModelFiles
from alti2v.data.skips import failed_inputs
from alti2v.data.vocabulary import category_of, multi_hot, vocabulary_hash
from alti2v.evaluate.baselines import BaselineError, approach3_weights, feature_extractor
from alti2v.evaluate.compare import Contestant, compare
from alti2v.evaluate.groups import GROUPS, tag_group
from alti2v.evaluate.judge import Judgement, Settings, judge
from alti2v.evaluate.names import Columns, take
from alti2v.evaluate.posts import Dataset, EvalError, Skip, folder_posts
from alti2v.model.linear import fit_regressions
from alti2v.model.saved import LoadedModel
from alti2v.progress import SILENT, Progress

log = logging.getLogger(__name__)

PER_TAG_COLUMNS = (
    "tag", "category", "group", "support", "ap", "precision", "recall", "f1", "threshold",
    "train_count", "ap_frequency_prior", "ap_approach3",
)  # fmt: skip
BASELINES = ("frequency_prior", "approach3")


@dataclass(frozen=True)
class EvalOptions:
    eval_dir: Path | None = None  # a folder of posts instead of the LevelDB eval split
    baseline_max: int = defaults.BASELINE_MAX
    # VGG16 weights of the approach-3 baseline; None: those the model started from
    # (alti2v.evaluate.baselines.approach3_weights).
    weights: str | None = None
    settings: Settings = field(default_factory=Settings)
    batch_size: int = defaults.BATCH_SIZE
    gallery: int = defaults.GALLERY_IMAGES


@dataclass(frozen=True)
class Entrant:
    """A model --eval judges: the tags of it that are judged, and how its posts are decoded."""

    loaded: LoadedModel
    columns: Columns
    spec: InputSpec

    @property
    def name(self) -> str:
        return self.loaded.folder.name


@dataclass
class Scored:
    """One model's memory-mapped matrices on the eval posts, in the order they were read, with
    the baselines' scores (on the dataset's tags: `baseline_columns` holds the baseline column of
    each of the model's, -1 for none)."""

    post_ids: list[str]
    sources: list[bytes | Path]
    targets: np.ndarray  # (images, tags) bool
    scores: dict[str, np.ndarray]  # scorer name -> (images, tags) float16
    skipped: Counter
    baseline_columns: np.ndarray | None = None


@dataclass(frozen=True)
class _Approach3:
    """Approach 3's feature extractor, and the input it gets (the dataset's pixels)."""

    extractor: object  # a keras.Model
    spec: InputSpec
    preprocess: str


@dataclass
class _Matrices:
    """Every scorer's matrices on the eval posts."""

    post_ids: list[str]
    sources: list[bytes | Path]
    skipped: Counter
    models: list[tuple[np.ndarray, np.ndarray]]  # each entrant's (scores, targets)
    truth: np.ndarray | None  # (images, dataset tags) targets of the baselines
    features: np.ndarray | None  # (images, 512) for approach 3
    seen: set[str]  # the keys of the scored posts' true tags
    baselines: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    summaries: list[dict]  # each model's summary.json, in --model order
    comparison: dict | None = None  # comparison.json, when several models were judged
    comparison_files: ComparisonFiles | None = None


def fitting_half(post_id: str) -> bool:
    """Whether a post is in the half thresholds are fitted on (the other half reports them).
    Salted, so that it is independent of the train/eval split, which hashes the bare id."""
    return hashlib.sha256(f"threshold-fit/{post_id}".encode()).digest()[0] < 128


def check_distinct(folders: list[Path]) -> None:
    """Refuse two --model naming one folder, or two folders of one name (one eval/<name>/)."""
    by_path: dict[Path, Path] = {}
    by_name: dict[str, Path] = {}
    for folder in folders:
        earlier = by_path.setdefault(folder.resolve(), folder)
        if earlier is not folder:
            raise EvalError(
                f"--model {earlier} and --model {folder} are the same folder; give each once"
            )
        earlier = by_name.setdefault(folder.name, folder)
        if earlier is not folder:
            raise EvalError(
                f"--model {earlier} and --model {folder} are both named {folder.name}, and "
                f"--eval writes each model's judgement to eval/{folder.name}/; rename one"
            )


def evaluate(data: DataDir, models: list[LoadedModel], options: EvalOptions,
             progress: Progress = SILENT) -> Evaluation:  # fmt: skip
    """Judge the models and the baselines, and the models against each other; write every
    output; return each summary.json's content (and comparison.json's)."""
    dataset = Dataset.open(data, models, options.eval_dir is None)
    with contextlib.closing(dataset):
        vocabulary = dataset.vocabulary
        known = None if options.eval_dir or vocabulary is None else set(vocabulary.keys)
        entrants = [_entrant(model, known, vocabulary) for model in models]
        baselines = Columns.judged(vocabulary.tags, None) if dataset.available else None
        specs = {entrant.spec for entrant in entrants} | ({dataset.spec} if baselines else set())
        if options.eval_dir:
            posts, count = folder_posts(
                options.eval_dir, specs,
                lambda truth: any(entrant.columns.labels(truth) for entrant in entrants),
            )  # fmt: skip
        else:
            posts, count = dataset.eval_posts(data, specs)
        approach3, approach3_skipped = None, None
        if baselines:
            try:
                extractor = feature_extractor(
                    dataset.spec.image_size, approach3_weights(options.weights, models)
                )
                approach3 = _Approach3(extractor, dataset.spec, _approach3_preprocess(models))
            except BaselineError as error:
                approach3_skipped = str(error)
                log.warning("approach 3 skipped: %s", approach3_skipped)
        with _scratch(data.evaluation(entrants[0].name).scratch) as scratch:
            matrices = _score(posts, count, entrants, baselines, approach3, scratch, options,
                              progress)  # fmt: skip
            train_counts = dataset.counts(len(vocabulary.tags)) if vocabulary else None
            if baselines:
                _score_baselines(matrices, dataset, baselines, train_counts, approach3, scratch,
                                 options, progress)  # fmt: skip
            # The dataset stays open: the reports' galleries show its posts' pixels.
            return _judge_and_write(data, entrants, vocabulary, baselines, matrices,
                                    train_counts, approach3_skipped, options, dataset)  # fmt: skip


def _entrant(loaded: LoadedModel, known: set[str] | None, vocabulary) -> Entrant:
    columns = Columns.judged(loaded.tags, known)
    if not columns.tags:
        raise EvalError(
            f"{loaded.folder}: none of its {len(loaded.tags)} tags is in the dataset's "
            f"vocabulary ({len(vocabulary.tags)} tags), so there is no truth to judge it on; "
            "give --eval-dir DIR with posts tagged in its vocabulary"
        )
    return Entrant(loaded, columns, InputSpec.of_model(loaded.info))


def _approach3_preprocess(models: list[LoadedModel]) -> str:
    """The input approach 3's VGG16 gets: the first model from --train's, else the default."""
    trained = [model for model in models if model.info.get("layout") != "wd"]
    return trained[0].info["preprocess"] if trained else defaults.PREPROCESS


@contextlib.contextmanager
def _scratch(folder: Path) -> Iterator[Path]:
    """A fresh folder for the memory-mapped matrices, removed however the run ends."""
    shutil.rmtree(folder, ignore_errors=True)  # left by a killed run
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _score(
    posts, count, entrants: list[Entrant], baselines: Columns | None,
    approach3: _Approach3 | None, scratch: Path, options, progress,
) -> _Matrices:  # fmt: skip
    """Stream the posts through every model (and the feature extractor) in batches."""
    models = []
    for number, entrant in enumerate(entrants):
        shape = (count, len(entrant.columns.tags))
        models.append((_memmap(scratch / f"model-{number}.f16", np.float16, shape),
                       _memmap(scratch / f"targets-{number}.bool", np.bool_, shape)))  # fmt: skip
    truth = None if baselines is None else _memmap(
        scratch / "truth.bool", np.bool_, (count, len(baselines.tags))
    )  # fmt: skip
    features = None
    if approach3 is not None:
        features = _memmap(
            scratch / "features.f32", np.float32, (count, approach3.extractor.output_shape[-1])
        )
    post_ids, sources, skipped, seen = [], [], Counter(), set()
    batch = []

    def flush() -> None:
        rows = slice(len(post_ids), len(post_ids) + len(batch))
        inputs = {}  # (spec, preprocess) -> the batch's model input, made once for all who share it

        def model_input(spec: InputSpec, preprocess: str) -> np.ndarray:
            if (spec, preprocess) not in inputs:
                pixels = np.stack([post.pixels[spec] for post in batch])
                inputs[spec, preprocess] = to_model_input(pixels, preprocess)
            return inputs[spec, preprocess]

        for entrant, (scores, targets) in zip(entrants, models, strict=True):
            images = model_input(entrant.spec, entrant.loaded.info["preprocess"])
            probabilities = np.clip(entrant.loaded.predict(images), 0, 1)
            scores[rows] = probabilities[:, entrant.columns.outputs]
            targets[rows] = _targets(batch, entrant.columns)
        if approach3 is not None:
            features[rows] = approach3.extractor.predict_on_batch(
                model_input(approach3.spec, approach3.preprocess)
            )
        if truth is not None:
            truth[rows] = _targets(batch, baselines)
        for post in batch:
            post_ids.append(post.post_id)
            sources.append(post.source)
            seen.update(post.truth)
        batch.clear()

    with progress(total=count, desc="scoring", unit=" img") as bar:
        for item in posts:
            if isinstance(item, Skip):
                skipped[item.reason] += 1
                bar.update()
                if item.message:
                    log.warning("%s; skipped", item.message)
                continue
            batch.append(item)
            if len(batch) == options.batch_size:
                bar.update(len(batch))
                flush()
        if batch:
            bar.update(len(batch))
            flush()
    if not post_ids:
        raise EvalError(
            "no post could be scored: none has an image and a tag of the model's vocabulary"
        )
    used = len(post_ids)
    return _Matrices(
        post_ids, sources, skipped,
        [(scores[:used], targets[:used]) for scores, targets in models],
        truth[:used] if truth is not None else None,
        features[:used] if features is not None else None, seen,
    )  # fmt: skip


def _targets(batch, columns: Columns) -> np.ndarray:
    return multi_hot([columns.labels(post.truth) for post in batch], len(columns.tags), np.bool_)


def _score_baselines(matrices: _Matrices, dataset: Dataset, baselines: Columns, train_counts,
                     approach3: _Approach3 | None, scratch, options, progress) -> None:  # fmt: skip
    num_tags = len(baselines.tags)
    num_images = len(matrices.post_ids)
    prior = _memmap(scratch / "frequency_prior.f16", np.float16, (num_images, num_tags))
    prior[:] = train_counts / len(dataset.keys)
    matrices.baselines["frequency_prior"] = prior
    if approach3 is None:
        return
    keys = dataset.sample(options.baseline_max, options.settings.seed)
    features, targets = [], []
    records = dataset.records(keys)
    with progress(total=len(keys), desc="approach-3 features", unit=" img") as bar:
        while chunk := [record for _, record in zip(range(options.batch_size), records,
                                                    strict=False)]:  # fmt: skip
            images = to_model_input(np.stack([pixels for pixels, _ in chunk]), approach3.preprocess)
            features.append(approach3.extractor.predict_on_batch(images))
            targets.append(multi_hot([labels for _, labels in chunk], num_tags, np.bool_))
            bar.update(len(chunk))
    log.info("fitting approach 3: %d logistic regressions on %d posts", num_tags, len(keys))
    regressions = fit_regressions(np.concatenate(features), np.concatenate(targets))
    approach3 = _memmap(scratch / "approach3.f16", np.float16, (num_images, num_tags))
    for start in range(0, num_images, 1024):
        approach3[start : start + 1024] = regressions.predict(
            matrices.features[start : start + 1024]
        )
    matrices.baselines["approach3"] = approach3


def _memmap(path: Path, dtype, shape: tuple[int, int]) -> np.ndarray:
    # A zero-row file cannot be mapped; one spare row keeps empty inputs on the same path.
    return np.memmap(path, dtype=dtype, mode="w+", shape=(max(shape[0], 1), shape[1]))


def _judge_and_write(data, entrants, vocabulary, baselines, matrices: _Matrices, train_counts,
                     approach3_skipped, options, dataset) -> Evaluation:  # fmt: skip
    for entrant, (_, targets) in zip(entrants, matrices.models, strict=True):
        if not targets.any():
            raise EvalError(
                f"{entrant.loaded.folder}: none of its tags is on any of the "
                f"{len(matrices.post_ids)} posts scored, so there is nothing to judge it on"
            )
    settings = options.settings
    fit_half = np.array([fitting_half(post_id) for post_id in matrices.post_ids])
    baseline_judgements = {}
    if baselines:
        categories = [category_of(tag, vocabulary.categories) for tag in baselines.tags]
        baseline_judgements = {
            name: judge(scores, matrices.truth, fit_half, baselines.tags, categories,
                        train_counts, settings)
            for name, scores in matrices.baselines.items()
        }  # fmt: skip
    summaries, contestants = [], []
    for entrant, (scores, targets) in zip(entrants, matrices.models, strict=True):
        loaded, tags = entrant.loaded, entrant.columns.tags
        categories = [category_of(tag, loaded.info.get("categories", {})) for tag in tags]
        positions = entrant.columns.positions_in(baselines) if baselines else np.full(len(tags), -1)
        counts = take(train_counts, positions, 0).astype(np.int64)
        judgement = judge(scores, targets, fit_half, tags, categories, counts, settings)
        judgements = {"model": judgement, **baseline_judgements}
        scored = Scored(matrices.post_ids, matrices.sources, targets,
                        {"model": scores, **matrices.baselines}, matrices.skipped,
                        positions if baselines else None)  # fmt: skip
        summary = _summary(judgements, scored, loaded, options, approach3_skipped)
        summary["groups"] = _group_maps(tags, categories, judgements, positions)
        files = data.evaluation(entrant.name)
        _save_thresholds(loaded, judgement, summary, settings.threshold)
        _write_per_tag(files, tags, categories, counts, judgements, positions)
        atomic_write_json(files.summary, summary)
        from alti2v.evaluate.report import write_report

        history = data.history if loaded.info.get("layout") != "wd" else None
        write_report(files, history, summary, judgements, scored, tags, counts, options,
                     dataset.db)  # fmt: skip
        summaries.append(summary)
        contestants.append(Contestant(entrant.name, scores, targets, entrant.columns, judgement))
    if len(entrants) == 1:
        return Evaluation(summaries)
    truth_keys = set(vocabulary.keys) if not options.eval_dir else matrices.seen
    comparison = _comparison(entrants, contestants, summaries, baselines, truth_keys,
                             fit_half, options, approach3_skipped)  # fmt: skip
    files = _comparison_files(data)
    atomic_write_json(files.summary, comparison)
    from alti2v.evaluate.report import write_comparison

    write_comparison(files, comparison)
    return Evaluation(summaries, comparison, files)


def _comparison(entrants, contestants, summaries, baselines, truth_keys, fit_half, options,
                approach3_skipped) -> dict:  # fmt: skip
    rule = options.settings.rule
    rows = []
    for entrant, summary in zip(entrants, summaries, strict=True):
        layout = entrant.loaded.info.get("layout", "keras")
        covered = len(truth_keys & set(entrant.columns.keys))
        rows.append(_row(entrant.name, layout, len(entrant.loaded.tags), covered,
                         summary["model"], rule))  # fmt: skip
        rows[-1]["folder"] = str(entrant.loaded.folder)
    scored_baselines = {}
    if baselines:
        covered = len(truth_keys & set(baselines.keys))
        scored_baselines = {
            name: _row(name, "baseline", len(baselines.tags), covered, summaries[0][name], rule)
            for name in BASELINES
            if name in summaries[0]
        }
    first = summaries[0]
    comparison = {
        "posts": first["posts"],
        "images": first["model"]["images"],
        "fitting_images": first["model"]["fitting_images"],
        "report_images": first["model"]["report_images"],
        "skipped": first["skipped"],
        "settings": first["settings"],
        "truth_tags": len(truth_keys),
        "models": rows,
        "baselines": scored_baselines,
        "pairs": [
            compare(first_model, second_model, fit_half, options.settings)
            for first_model, second_model in combinations(contestants, 2)
        ],
    }
    if approach3_skipped:
        comparison["approach3_skipped"] = approach3_skipped
    return comparison


def _row(name: str, layout: str, tags: int, covered: int, scores: dict, rule: str) -> dict:
    """One scorer's line of the comparison: its tags, how many of the truth's it covers."""
    decisions = scores["rules"][rule]
    return {
        "name": name, "layout": layout, "tags": tags, "tags_covered": covered,
        "tags_judged": scores["tags"], "map": scores["map"], "map_ci95": scores["map_ci95"],
        "micro_f1": decisions["micro_f1"], "micro_f1_ci95": decisions["micro_f1_ci95"],
        "ece": scores["calibration"]["ece"],
    }  # fmt: skip


def _comparison_files(data: DataDir) -> ComparisonFiles:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    files, suffix = data.comparison(f"compare-{stamp}"), 1
    while files.folder.exists():
        files, suffix = data.comparison(f"compare-{stamp}-{suffix}"), suffix + 1
    return files


def _summary(judgements: dict[str, Judgement], scored: Scored, loaded: LoadedModel, options,
             approach3_skipped: str | None) -> dict:  # fmt: skip
    summary = {
        "model_folder": str(loaded.folder),
        "posts": str(options.eval_dir) if options.eval_dir else "eval split of the dataset",
        "skipped": dict(scored.skipped),
        "settings": {
            "rule": options.settings.rule,
            "threshold": options.settings.threshold,
            "bootstrap": options.settings.bootstrap,
            "seed": options.settings.seed,
            "baseline_max": options.baseline_max,
            "tta": loaded.tta,
        },
        **{name: judgement.summary for name, judgement in judgements.items()},
    }
    if approach3_skipped:
        summary["approach3_skipped"] = approach3_skipped
    return summary


def _save_thresholds(loaded: LoadedModel, judgement: Judgement, summary, constant: float) -> None:
    calibration = judgement.summary["calibration"]
    # A tag without truth on these posts had nothing to fit on: it keeps the constant, as a tag
    # without a positive does, so that --pred's fitted rules cover the whole vocabulary.
    rules = {
        rule: {tag: fitted.get(tag, constant) for tag in loaded.tags}
        for rule, fitted in judgement.thresholds.items()
    }
    saved = {
        "vocab_hash": vocabulary_hash(loaded.tags),
        "rules": rules,
        "fitted_on": {
            "posts": summary["posts"],
            "images": judgement.summary["images"],
            "note": "refitted on all posts; the report scores thresholds fitted on one half "
            "on the other",
        },
        "ece": calibration["ece"],
    }
    without_truth = len(loaded.tags) - judgement.summary["tags"]
    if without_truth:
        saved["fitted_on"]["tags_without_truth"] = without_truth
    if calibration["temperature_improves"]:
        saved["temperature"] = calibration["temperature"]
        saved["ece_after_temperature"] = calibration["ece_after_temperature"]
    atomic_write_json(ModelFiles(loaded.folder).thresholds, saved)


def _group_maps(tags, categories, judgements, positions: np.ndarray) -> dict:
    """Per tag group (alti2v.evaluate.groups) with a positive: its tag count and the mean AP
    of the model and of each baseline over those tags."""
    groups = np.array([tag_group(tag, category) for tag, category in zip(tags, categories,
                                                                         strict=True)])  # fmt: skip
    model = judgements["model"].average_precision
    scorers = {"model": model} | {
        name: take(judgements[name].average_precision, positions)
        for name in BASELINES
        if name in judgements
    }
    maps = {}
    for group in GROUPS:
        members = (groups == group) & np.isfinite(model)
        if members.any():
            maps[group] = {"tags": int(members.sum())} | {
                f"map_{name}" if name != "model" else "map": round(
                    float(np.nanmean(ap[members])), 4
                )
                for name, ap in scorers.items()
            }
    return maps


def _write_per_tag(files: EvalFiles, tags, categories, train_counts, judgements,
                   positions: np.ndarray) -> None:  # fmt: skip
    model = judgements["model"]
    baseline_ap = {
        name: take(judgements[name].average_precision if name in judgements else None, positions)
        for name in BASELINES
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PER_TAG_COLUMNS)
    for index, tag in enumerate(tags):
        threshold = "" if model.chosen is None else _number(model.chosen[index])
        writer.writerow([
            tag, categories[index], tag_group(tag, categories[index]), int(model.support[index]),
            _number(model.average_precision[index]), _number(model.precision[index]),
            _number(model.recall[index]), _number(model.f1[index]), threshold,
            int(train_counts[index]), _number(baseline_ap["frequency_prior"][index]),
            _number(baseline_ap["approach3"][index]),
        ])  # fmt: skip
    atomic_write_text(files.per_tag, buffer.getvalue())


def _number(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.4f}"


def unreadable(summary: dict) -> int:
    """Posts that could not be read (the run still scored every other one)."""
    return failed_inputs(summary["skipped"])
