"""--eval: score a trained model on held-out posts, fit its thresholds, compare it with baselines.

The posts are the eval split of the LevelDB dataset, or any folder in the data layout (`--eval-dir`,
decoded with `alti2v.data.images.load_image` like every other stage). They are scored in batches
into float16 matrices memory-mapped under `eval/<model>/.scratch/` (removed when the run ends), so
memory stays bounded whatever their number; `alti2v.evaluate.judge` then reads those a block at a
time. The frequency prior and approach 3 (`alti2v.evaluate.baselines`) are scored into their own
matrices and judged the same way. Outputs (`alti2v.data.layout.EvalFiles`): summary.json,
per_tag.csv, the pictures and report.html (`alti2v.evaluate.report`), and `thresholds.json` beside
the model."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alti2v import defaults
from alti2v.data.files import atomic_write_json, atomic_write_text
from alti2v.data.images import load_image, to_model_input
from alti2v.data.layout import DataDir, EvalFiles, ModelFiles
from alti2v.data.posts import iter_posts
from alti2v.data.records import (
    open_db,
    parse_record_key,
    read_meta,
    record_keys,
    sample_keys,
    unpack_record,
)
from alti2v.data.skips import NO_IMAGE, NO_VOCABULARY_TAG, InputError, failed_inputs
from alti2v.data.vocabulary import (
    built_with,
    category_of,
    label_indices,
    multi_hot,
    tag_index,
    vocabulary_hash,
)
from alti2v.errors import PipelineError
from alti2v.evaluate.baselines import feature_extractor
from alti2v.evaluate.judge import Judgement, Settings, judge
from alti2v.model.linear import fit_regressions
from alti2v.model.saved import LoadedModel
from alti2v.progress import SILENT, Progress

log = logging.getLogger(__name__)

PER_TAG_COLUMNS = (
    "tag", "category", "support", "ap", "precision", "recall", "f1", "threshold",
    "train_count", "ap_frequency_prior", "ap_approach3",
)  # fmt: skip


class EvalError(PipelineError):
    pass


@dataclass(frozen=True)
class EvalOptions:
    eval_dir: Path | None = None  # a folder of posts instead of the LevelDB eval split
    baseline_max: int = defaults.BASELINE_MAX
    weights: str = defaults.WEIGHTS  # VGG16 weights of the approach-3 baseline
    settings: Settings = field(default_factory=Settings)
    batch_size: int = defaults.BATCH_SIZE
    gallery: int = defaults.GALLERY_IMAGES


@dataclass(frozen=True)
class EvalPost:
    post_id: str
    source: bytes | Path  # its LevelDB key or its image file, to show it in the gallery
    pixels: np.ndarray
    labels: list[int]


@dataclass(frozen=True)
class Skip:
    """A post that cannot be scored: why (a short key for the counts) and what to log."""

    reason: str
    message: str | None


@dataclass
class Scored:
    """The memory-mapped matrices of the eval posts, in the order they were read."""

    post_ids: list[str]
    sources: list[bytes | Path]
    targets: np.ndarray  # (images, tags) bool
    scores: dict[str, np.ndarray]  # scorer name -> (images, tags) float16
    skipped: Counter
    features: np.ndarray | None = None  # (images, 512) for approach 3


def fitting_half(post_id: str) -> bool:
    """Whether a post is in the half thresholds are fitted on (the other half reports them).
    Salted, so that it is independent of the train/eval split, which hashes the bare id."""
    return hashlib.sha256(f"threshold-fit/{post_id}".encode()).digest()[0] < 128


def evaluate(data: DataDir, loaded: LoadedModel, model_folder: Path, options: EvalOptions,
             progress: Progress = SILENT) -> dict:  # fmt: skip
    """Judge the model and the baselines; write every output; return summary.json's content."""
    tags = loaded.tags
    files = data.evaluation(model_folder.name)
    train = _TrainSplit.open(data, tags, options.eval_dir is None)
    with contextlib.closing(train):
        posts, count = (
            _folder_posts(options.eval_dir, loaded) if options.eval_dir else train.eval_posts(data)
        )
        extractor = None
        if train.available:
            extractor = feature_extractor(loaded.info["image_size"], options.weights)
        with _scratch(files.scratch) as scratch:
            scored = _score(posts, count, loaded, extractor, scratch, options, progress)
            train_counts = train.counts(len(tags))
            if train.available:
                _score_baselines(scored, train, train_counts, extractor, loaded, scratch, options,
                                 progress)  # fmt: skip
            # The dataset stays open: the report's gallery shows its posts' pixels.
            return _judge_and_write(
                data, files, loaded, model_folder, scored, train_counts, options, train.db
            )


@contextlib.contextmanager
def _scratch(folder: Path) -> Iterator[Path]:
    """A fresh folder for the memory-mapped matrices, removed however the run ends."""
    shutil.rmtree(folder, ignore_errors=True)  # left by a killed run
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _judge_and_write(data, files, loaded, model_folder, scored, train_counts, options, db) -> dict:
    tags = loaded.tags
    categories = [category_of(tag, loaded.info.get("categories", {})) for tag in tags]
    fit_half = np.array([fitting_half(post_id) for post_id in scored.post_ids])
    judgements = {
        name: judge(scores, scored.targets, fit_half, tags, categories, train_counts,
                    options.settings)
        for name, scores in scored.scores.items()
    }  # fmt: skip
    summary = _summary(judgements, scored, model_folder, options, loaded.tta)
    _save_thresholds(model_folder, judgements["model"], vocabulary_hash(tags), summary)
    _write_per_tag(files, tags, categories, train_counts, judgements)
    atomic_write_json(files.summary, summary)
    from alti2v.evaluate.report import write_report

    write_report(files, data, summary, judgements, scored, tags, train_counts, options, db)
    return summary


class _TrainSplit:
    """The LevelDB dataset, when it matches the model: the eval split's posts, and the training
    posts the baselines learn from."""

    def __init__(self, db, keys: list[bytes]):
        self.db = db
        self.keys = keys

    @property
    def available(self) -> bool:
        return bool(self.keys)

    @classmethod
    def open(cls, data: DataDir, tags: list[str], required: bool) -> _TrainSplit:
        if not required and not data.db.is_dir():
            log.warning("%s: no dataset, so no baselines (they learn from its training posts)",
                        data.db)  # fmt: skip
            return cls(None, [])
        db = open_db(data.db)
        if not built_with(read_meta(db, data.db), tags):
            db.close()
            if required:
                raise EvalError(
                    f"{data.db} was built with another vocabulary than the model's; give the "
                    "--model trained on it, or run --build again"
                )
            log.warning("%s: another vocabulary than the model's, so no baselines", data.db)
            return cls(None, [])
        return cls(db, record_keys(db, "train"))

    def eval_posts(self, data: DataDir) -> tuple[Iterator[EvalPost], int]:
        keys = record_keys(self.db, "eval")
        if not keys:
            raise EvalError(
                f"{data.db} has no eval posts; run --build with --eval-fraction above 0, or "
                "give --eval-dir DIR"
            )
        return self.records(keys), len(keys)

    def records(self, keys: list[bytes]) -> Iterator[EvalPost]:
        for key in keys:
            pixels, labels = unpack_record(self.db.get(key))
            yield EvalPost(parse_record_key(key)[1], key, pixels, labels)

    def sample(self, limit: int, seed: int) -> list[bytes]:
        """At most `limit` training keys, a seeded random choice kept in key order."""
        return sample_keys(self.keys, limit, seed)

    def counts(self, num_tags: int) -> np.ndarray:
        """Training posts per tag (zeros without a dataset)."""
        counts = np.zeros(num_tags, dtype=np.int64)
        for key in self.keys:
            _, labels = unpack_record(self.db.get(key))
            counts[labels] += 1
        return counts

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def _folder_posts(folder: Path, loaded: LoadedModel) -> tuple[Iterator[EvalPost], int]:
    if not folder.is_dir():
        raise EvalError(f"--eval-dir {folder}: no such folder")
    index = tag_index(loaded.tags)
    posts = list(iter_posts(folder))
    if not posts:
        raise EvalError(
            f"--eval-dir {folder}: no tagged posts (need <id>.txt beside each image); "
            "an --eval-dir needs the true tags to score against"
        )
    info = loaded.info

    def read() -> Iterator[EvalPost]:
        for post in posts:
            labels = label_indices(post.labels(), index)
            if post.image is None:
                yield Skip(NO_IMAGE, f"{post.tags_file}: tags without an image")
            elif not labels:
                yield Skip(NO_VOCABULARY_TAG, None)
            else:
                try:
                    pixels = load_image(post.image, info["image_size"], info["resize"])
                except InputError as error:
                    yield Skip(error.reason, str(error))
                    continue
                yield EvalPost(post.post_id, post.image, pixels, labels)

    return read(), len(posts)


def _score(posts, count, loaded, extractor, scratch: Path, options, progress) -> Scored:
    """Stream the posts through the model (and the feature extractor) in batches."""
    num_tags = len(loaded.tags)
    scores = _memmap(scratch / "model.f16", np.float16, (count, num_tags))
    targets = _memmap(scratch / "targets.bool", np.bool_, (count, num_tags))
    features = None
    if extractor is not None:
        features = _memmap(
            scratch / "features.f32", np.float32, (count, extractor.output_shape[-1])
        )
    post_ids, sources, skipped = [], [], Counter()
    batch: list[EvalPost] = []

    def flush() -> None:
        rows = slice(len(post_ids), len(post_ids) + len(batch))
        images = to_model_input(
            np.stack([post.pixels for post in batch]), loaded.info["preprocess"]
        )
        scores[rows] = np.clip(loaded.predict(images), 0, 1)
        if features is not None:
            features[rows] = extractor.predict_on_batch(images)
        targets[rows] = multi_hot([post.labels for post in batch], num_tags, np.bool_)
        for post in batch:
            post_ids.append(post.post_id)
            sources.append(post.source)
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
    return Scored(
        post_ids, sources, targets[:used], {"model": scores[:used]}, skipped,
        features[:used] if features is not None else None,
    )  # fmt: skip


def _score_baselines(scored: Scored, train: _TrainSplit, train_counts, extractor, loaded, scratch,
                     options, progress) -> None:  # fmt: skip
    num_tags = len(loaded.tags)
    num_images = len(scored.post_ids)
    prior = _memmap(scratch / "frequency_prior.f16", np.float16, (num_images, num_tags))
    prior[:] = train_counts / len(train.keys)
    scored.scores["frequency_prior"] = prior

    keys = train.sample(options.baseline_max, options.settings.seed)
    features, targets = [], []
    posts = train.records(keys)
    with progress(total=len(keys), desc="approach-3 features", unit=" img") as bar:
        while chunk := [post for _, post in zip(range(options.batch_size), posts, strict=False)]:
            images = to_model_input(
                np.stack([post.pixels for post in chunk]), loaded.info["preprocess"]
            )
            features.append(extractor.predict_on_batch(images))
            targets.append(multi_hot([post.labels for post in chunk], num_tags, np.bool_))
            bar.update(len(chunk))
    log.info("fitting approach 3: %d logistic regressions on %d posts", num_tags, len(keys))
    regressions = fit_regressions(np.concatenate(features), np.concatenate(targets))
    approach3 = _memmap(scratch / "approach3.f16", np.float16, (num_images, num_tags))
    for start in range(0, num_images, 1024):
        approach3[start : start + 1024] = regressions.predict(scored.features[start : start + 1024])
    scored.scores["approach3"] = approach3


def _memmap(path: Path, dtype, shape: tuple[int, int]) -> np.ndarray:
    # A zero-row file cannot be mapped; one spare row keeps empty inputs on the same path.
    return np.memmap(path, dtype=dtype, mode="w+", shape=(max(shape[0], 1), shape[1]))


def _summary(
    judgements: dict[str, Judgement], scored: Scored, model_folder: Path, options, tta: str
) -> dict:
    return {
        "model_folder": str(model_folder),
        "posts": str(options.eval_dir) if options.eval_dir else "eval split of the dataset",
        "skipped": dict(scored.skipped),
        "settings": {
            "rule": options.settings.rule,
            "threshold": options.settings.threshold,
            "bootstrap": options.settings.bootstrap,
            "seed": options.settings.seed,
            "baseline_max": options.baseline_max,
            "tta": tta,
        },
        **{name: judgement.summary for name, judgement in judgements.items()},
    }


def _save_thresholds(model_folder: Path, judgement: Judgement, vocab_hash: str, summary) -> None:
    calibration = judgement.summary["calibration"]
    saved = {
        "vocab_hash": vocab_hash,
        "rules": judgement.thresholds,
        "fitted_on": {
            "posts": summary["posts"],
            "images": judgement.summary["images"],
            "note": "refitted on all posts; the report scores thresholds fitted on one half "
            "on the other",
        },
        "ece": calibration["ece"],
    }
    if calibration["temperature_improves"]:
        saved["temperature"] = calibration["temperature"]
        saved["ece_after_temperature"] = calibration["ece_after_temperature"]
    atomic_write_json(ModelFiles(model_folder).thresholds, saved)


def _write_per_tag(files: EvalFiles, tags, categories, train_counts, judgements) -> None:
    model = judgements["model"]
    baseline_ap = {
        name: judgements[name].average_precision
        if name in judgements
        else np.full(len(tags), np.nan)
        for name in ("frequency_prior", "approach3")
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PER_TAG_COLUMNS)
    for index, tag in enumerate(tags):
        threshold = "" if model.chosen is None else _number(model.chosen[index])
        writer.writerow([
            tag, categories[index], int(model.support[index]),
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
