"""--pred over a collection: inputs -> predictions -> thresholds -> tag filters -> an output format,
plus `--skip-unchanged` and the `--sheet` contact sheet.

    options = PredOptions(format="caption", tags=TagSettings(spaces=True))
    for text in tag_collection(loaded, model_folder, find_inputs(["shots/"]), options):
        out.write(text)  # alti2v.cli.pred writes to stdout

`tag_collection` yields each image's output text as it is done (the command line writes it to
stdout); errors go to the log (stderr) and are counted, and the count it returns (the generator's
value) the caller turns into exit code 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alti2v import defaults
from alti2v.data.layout import ModelFiles
from alti2v.data.posts import Post
from alti2v.data.vocabulary import vocabulary_hash
from alti2v.model.saved import LoadedModel
from alti2v.progress import SILENT, Progress
from alti2v.tag.captions import CaptionSettings, file_hash, is_unchanged, read_record, sidecar_path
from alti2v.tag.inputs import FoundInputs, InputImage
from alti2v.tag.outputs import FORMATS, OutputContext, Tagged, record_path
from alti2v.tag.predict import predict_images
from alti2v.tag.select import Tag, TagSettings, Vocabulary, select_tags, tag_key, top_rating
from alti2v.tag.sheet import SheetCell, SheetLine, render_sheet
from alti2v.tag.thresholds import FITTED_RULES, layout_rule, load_rule, tag_mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Thresholds:
    rule: str = defaults.THRESHOLD_RULE
    threshold: float = defaults.THRESHOLD  # the constant rule's
    general: float | None = None  # overrides the rule for general tags
    character: float | None = None  # overrides the rule for character tags


@dataclass(frozen=True)
class PredOptions:
    format: str = defaults.FORMAT
    tags: TagSettings = field(default_factory=TagSettings)
    thresholds: Thresholds = field(default_factory=Thresholds)
    captions: CaptionSettings = field(default_factory=CaptionSettings)
    with_probs: bool = False
    batch_size: int = defaults.BATCH_SIZE
    workers: int = defaults.DECODE_WORKERS
    sheet: Path | None = None


def tag_collection(
    loaded: LoadedModel,
    model_folder: Path,
    found: FoundInputs,
    options: PredOptions,
    progress: Progress = SILENT,
) -> Generator[str, None, int]:
    """Tag every input; yield the chosen format's text as each is done; return how many inputs
    failed."""
    vocabulary = Vocabulary.from_model(loaded.tags, loaded.info.get("categories", {}))
    keep = _threshold_rule(loaded, model_folder, vocabulary, options.thresholds)
    provenance = _provenance(loaded, model_folder, options)
    context = OutputContext(
        model_folder.name, vocabulary, provenance, options.captions, options.with_probs
    )
    output = FORMATS[options.format](context)
    failures = len(found.problems)
    for problem in found.problems:
        log.error(problem)
    yield output.header()

    hashes: dict[Path, str] = {}
    records: dict[Path, dict | None] = {}  # read once here, used again by the caption output
    todo: list[InputImage] = []
    for image in found.images:
        if not options.captions.skip_unchanged:
            todo.append(image)
            continue
        try:
            hashes[image.path] = file_hash(image.path)
        except OSError as error:
            log.error("%s: cannot read (%s); not tagged", image.path, error.strerror)
            failures += 1
            continue
        record = records[image.path] = read_record(sidecar_path(image, options.captions.output_dir))
        target = record_path(options.format, image, options.captions)
        if is_unchanged(record, hashes[image.path], provenance, target):
            yield f"unchanged {target}\n"
        else:
            todo.append(image)

    cells: list[SheetCell] = []
    predictions = predict_images(loaded, todo, options.batch_size, options.workers)
    for prediction in progress(predictions, total=len(todo), unit=" img"):
        if prediction.error is not None:
            log.error("%s; not tagged", prediction.error)
            yield output.error(prediction.image, prediction.error)
            failures += 1
            continue
        probabilities = prediction.probabilities
        result = Tagged(
            prediction.image,
            select_tags(probabilities, keep(probabilities), vocabulary, options.tags),
            _rating(probabilities, vocabulary),
            probabilities,
            hashes.get(prediction.image.path),
            records.get(prediction.image.path),
        )
        if options.sheet is not None and len(cells) < defaults.SHEET_MAX_IMAGES:
            # Now, before a caption written beside the image replaces its file of true tags.
            cells.append(sheet_cell(result.image, result.tags, vocabulary.tags))
        try:
            yield output.write(result)
        except OSError as error:
            log.error("%s: cannot write its output (%s)", prediction.image.path, error)
            failures += 1
    if options.sheet is not None:
        render_sheet(cells, options.sheet, defaults.SHEET_COLUMNS, defaults.SHEET_THUMB)
        log.info("sheet: %d images -> %s", len(cells), options.sheet)
    return failures


def _threshold_rule(
    loaded: LoadedModel, folder: Path, vocabulary: Vocabulary, settings: Thresholds
):
    """probabilities -> bool mask: the rule, then the per-category overrides."""
    values: np.ndarray | float = settings.threshold
    # A WD folder's own fitted thresholds, unless alt-i2v's --eval has fitted it on the user's
    # posts since: its thresholds.json, as beside a model from --train, comes first.
    layout_rules = loaded.info.get("fitted")
    if settings.rule in FITTED_RULES:
        if layout_rules is not None and not ModelFiles(folder).thresholds.is_file():
            values = layout_rule(folder, settings.rule, layout_rules)
        else:
            values = load_rule(folder, settings.rule, loaded.tags, vocabulary_hash(loaded.tags))
    categories = np.array(vocabulary.categories)
    overrides = [
        (categories == name, value)
        for name, value in (("general", settings.general), ("character", settings.character))
        if value is not None
    ]

    def keep(probabilities: np.ndarray) -> np.ndarray:
        mask = tag_mask(probabilities, settings.rule, values)[0]
        for in_category, value in overrides:
            mask = np.where(in_category, probabilities >= value, mask)
        return mask

    return keep


def _rating(probabilities: np.ndarray, vocabulary: Vocabulary) -> tuple[str, float] | None:
    rating = top_rating(probabilities, vocabulary)
    return rating and (rating[0], rating[1])


def _provenance(loaded: LoadedModel, folder: Path, options: PredOptions) -> dict:
    """What made an output: a re-run with the same provenance makes the same output."""
    settings = {
        "format": options.format,
        "tags": dataclasses.asdict(options.tags),
        "captions": {
            "ext": options.captions.ext,
            "separator": options.captions.separator,
            "mode": options.captions.mode,
        },
        "with_probs": options.with_probs,
    }
    text = json.dumps(settings, sort_keys=True, default=sorted)
    return {
        "model": folder.name,
        "vocab_hash": vocabulary_hash(loaded.tags),
        "threshold_rule": dataclasses.asdict(options.thresholds),
        "settings": hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
    }


def sheet_cell(image: InputImage, tags: list[Tag], vocabulary: list[str]) -> SheetCell:
    """The image, its top tags with bars, and (with a `.txt` of true tags beside it) each tag
    marked right or wrong and the true tags of the vocabulary it missed."""
    path = image.path
    truth_file = path.with_suffix(".txt")
    truth = None
    if truth_file.is_file():
        post = Post(path.stem, path, truth_file, path.with_suffix(".json"))
        truth = {tag_key(tag) for tag in post.labels()}
    shown = [tag for tag in tags if tag.category != "always"]
    lines = [
        SheetLine(tag.name, tag.prob, None if truth is None else tag_key(tag.name) in truth)
        for tag in shown[: defaults.SHEET_LINES]
    ]
    if truth:
        known = {tag_key(tag) for tag in vocabulary}
        missed = sorted(truth & known - {tag_key(tag.name) for tag in shown})
        lines.append(SheetLine(f"missed: {' '.join(missed) or '-'}"))
    return SheetCell(path, str(image.relative()), lines)
