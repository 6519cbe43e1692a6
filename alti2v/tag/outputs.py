"""--pred's output formats, picked by name from FORMATS; each turns one image's tags into stdout
text and, for caption and sidecar, files.

- text: the original's lines, `{image} tag={tag} prob={prob}`;
- json: one object per image per line: image, model, rating, tags (with probability, category);
- csv: `image,tag,prob,category`, one row per tag, after a header;
- caption: a caption file per image (see captions.py); stdout says what happened to each file;
- sidecar: `<image>.json` with every tag's probability (see captions.py).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alti2v.tag import captions
from alti2v.tag.captions import CaptionSettings
from alti2v.tag.inputs import InputImage
from alti2v.tag.select import Tag, Vocabulary, ranked


@dataclass(frozen=True)
class Tagged:
    """One image's result: the tags the settings selected, its rating, every probability."""

    image: InputImage
    tags: list[Tag]
    rating: tuple[str, float] | None
    probabilities: np.ndarray
    image_hash: str | None = None  # known when --skip-unchanged hashed the file already
    record: dict | None = None  # the sidecar of an earlier run, read by --skip-unchanged


@dataclass(frozen=True)
class OutputContext:
    model: str  # the model folder's name
    vocabulary: Vocabulary
    provenance: dict  # model, vocabulary hash, threshold rule, settings fingerprint
    captions: CaptionSettings
    with_probs: bool = False


class TextOutput:
    def __init__(self, context: OutputContext):
        self.context = context

    def header(self) -> str:
        return ""

    def write(self, result: Tagged) -> str:
        return "".join(
            f"{result.image.path} tag={tag.name} prob={tag.prob:.6f}\n" for tag in result.tags
        )

    def error(self, image: InputImage, message: str) -> str:
        return ""  # the error goes to stderr only


class JsonOutput(TextOutput):
    def write(self, result: Tagged) -> str:
        rating = result.rating and {"tag": result.rating[0], "prob": round(result.rating[1], 6)}
        record = {
            "image": str(result.image.path),
            "model": self.context.model,
            "rating": rating,
            "tags": [
                {"tag": tag.name, "prob": round(tag.prob, 6), "category": tag.category}
                for tag in result.tags
            ],
        }
        return json.dumps(record, ensure_ascii=False) + "\n"

    def error(self, image: InputImage, message: str) -> str:
        return json.dumps({"image": str(image.path), "error": message}, ensure_ascii=False) + "\n"


class CsvOutput(TextOutput):
    def header(self) -> str:
        return _csv_rows([("image", "tag", "prob", "category")])

    def write(self, result: Tagged) -> str:
        image = str(result.image.path)
        return _csv_rows((image, tag.name, f"{tag.prob:.6f}", tag.category) for tag in result.tags)


class CaptionOutput(TextOutput):
    def write(self, result: Tagged) -> str:
        settings = self.context.captions
        path = captions.caption_path(result.image, settings)
        record_path = captions.sidecar_path(result.image, settings.output_dir)
        names = [_caption_name(tag, self.context.with_probs) for tag in result.tags]
        status, base = captions.write_caption(path, names, settings, result.record)
        if settings.skip_unchanged:
            captions.write_sidecar(
                record_path,
                {
                    **self._record(result),
                    **captions.caption_record_fields(path, base),
                },
            )
        return f"{status} {path}\n"

    def _record(self, result: Tagged) -> dict:
        return {
            "image": result.image.path.name,
            "sha256": result.image_hash or captions.file_hash(result.image.path),
            "provenance": self.context.provenance,
        }


class SidecarOutput(CaptionOutput):
    def write(self, result: Tagged) -> str:
        path = captions.sidecar_path(result.image, self.context.captions.output_dir)
        vocabulary = self.context.vocabulary
        rating = result.rating and {"tag": result.rating[0], "prob": round(result.rating[1], 6)}
        record = {
            **self._record(result),
            "rating": rating,
            "selected": [tag.name for tag in result.tags],
            "tags": [
                [
                    vocabulary.tags[index],
                    round(float(result.probabilities[index]), 6),
                    vocabulary.categories[index],
                ]
                for index in ranked(result.probabilities)
            ],
        }
        existed = path.exists()
        captions.write_sidecar(path, record)
        return f"{'updated' if existed else 'written'} {path}\n"


FORMATS = {
    "text": TextOutput,
    "json": JsonOutput,
    "csv": CsvOutput,
    "caption": CaptionOutput,
    "sidecar": SidecarOutput,
}
FILE_FORMATS = ("caption", "sidecar")  # the formats that write files (and --skip-unchanged)


def record_path(format_name: str, image: InputImage, settings: CaptionSettings) -> Path:
    """The output `--skip-unchanged` checks for `image`: its caption, or its sidecar."""
    if format_name == "caption":
        return captions.caption_path(image, settings)
    return captions.sidecar_path(image, settings.output_dir)


def _caption_name(tag: Tag, with_probs: bool) -> str:
    if not with_probs or tag.category == "always":
        return tag.name
    return f"({tag.name}:{tag.prob:.2f})"


def _csv_rows(rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
