"""Caption files and JSON sidecars beside images, written atomically, and what made them.

- caption: `<image stem><ext>` (".txt"), tags joined by a separator (", "), beside the image or
  under an output folder mirroring the input tree. An existing caption is skipped, overwritten,
  or merged (append: old tags first; prepend: new first; a tag already there in either spelling
  is not added twice).
- sidecar: `<image name>.json` with every tag, its probability and category, the rating, the
  image's SHA-256 and the provenance (model, vocabulary hash, threshold rule, settings), so a
  later run can tell what made it. `--skip-unchanged` reads it to pass over images tagged by the
  same model and settings from the same bytes; in caption format it is written as that record.

The record also keeps the caption text that was there before the first write, so an image that
changed is re-captioned from the user's own tags, not on top of the stale ones we added.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from alti2v import defaults
from alti2v.data.files import atomic_write_json, atomic_write_text, read_json
from alti2v.tag.inputs import InputImage
from alti2v.tag.select import tag_key

CAPTION_MODES = ("skip", "overwrite", "append", "prepend")
_WEIGHTED = re.compile(r"^\((.+):[0-9.]+\)$")  # "(long hair:0.87)", as --with-probs writes


@dataclass(frozen=True)
class CaptionSettings:
    ext: str = defaults.CAPTION_EXT
    separator: str = defaults.CAPTION_SEPARATOR
    mode: str = defaults.CAPTION_MODE
    output_dir: Path | None = None
    skip_unchanged: bool = False


def output_path(image: InputImage, output_dir: Path | None, name: str) -> Path:
    """`name` beside the image, or at the image's place in the tree mirrored under output_dir."""
    if output_dir is None:
        return image.path.parent / name
    return output_dir / image.relative().parent / name


def caption_path(image: InputImage, settings: CaptionSettings) -> Path:
    return output_path(image, settings.output_dir, image.path.stem + settings.ext)


def sidecar_path(image: InputImage, output_dir: Path | None) -> Path:
    return output_path(image, output_dir, image.path.name + ".json")


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_record(path: Path) -> dict | None:
    """The sidecar of an earlier run; None when there is none, or none that can be read (the
    image is then tagged again)."""
    try:
        return read_json(path, ValueError, "tagged again", missing=None)
    except ValueError:
        return None


def is_unchanged(record: dict | None, image_hash: str, provenance: dict, output: Path) -> bool:
    """Whether `output` was made from these image bytes by this model with these settings."""
    return (
        record is not None
        and record.get("sha256") == image_hash
        and record.get("provenance") == provenance
        and output.is_file()
    )


def write_caption(
    path: Path, tags: list[str], settings: CaptionSettings, record: dict | None
) -> tuple[str, str | None]:
    """Write the caption by `settings.mode`; return (what happened, the caption text that was
    there before our first write, for the record). `record` is the sidecar of an earlier run."""
    current = _read_text(path)
    base = current
    if record is not None and current is not None and record.get("caption_sha256") == _sha(current):
        base = record.get("caption_base")  # the caption is ours: start again from theirs
    if settings.mode == "skip" and base is not None:
        return "kept", base
    text = settings.separator.join(tags)
    if settings.mode in ("append", "prepend") and base is not None:
        text = _joined(base, tags, settings)
    atomic_write_text(path, text + "\n")
    return ("written" if current is None else "updated"), base


def _joined(base: str, tags: list[str], settings: CaptionSettings) -> str:
    """The user's caption exactly as it was (less its line break), with the new tags after it
    (append) or before it (prepend). Only a comma-separated tag list loses the tags it already
    has: a sentence or a space-separated line is text whose words are not tags to compare."""
    existing = base.rstrip("\r\n")
    if is_tag_list(existing, settings.separator):
        have = {caption_key(tag) for tag in split_caption(existing, settings.separator)}
        tags = [tag for tag in tags if caption_key(tag) not in have]
    if not existing or not tags:
        return existing or settings.separator.join(tags)
    new = settings.separator.join(tags)
    parts = (existing, new) if settings.mode == "append" else (new, existing)
    return settings.separator.join(parts)


# A part of a caption longer than this is prose, not a tag ("1girl", "long hair", "hair ribbon").
MAX_TAG_WORDS = 4


def is_tag_list(text: str, separator: str) -> bool:
    """Whether `text` is a list of tags cut by the separator's mark: "1girl, long hair, solo", and
    not a sentence ("A girl, smiling, in a park.") or a Danbooru line ("1girl long_hair")."""
    cut = separator.strip()
    if not cut or cut not in text or text.rstrip().endswith((".", "!", "?")):
        return False
    return all(len(part.split()) <= MAX_TAG_WORDS for part in text.split(cut))


def caption_record_fields(path: Path, base: str | None) -> dict:
    return {"caption_sha256": _sha(_read_text(path) or ""), "caption_base": base}


def write_sidecar(path: Path, record: dict) -> None:
    atomic_write_json(path, record)


def split_caption(text: str, separator: str) -> list[str]:
    """Tags of an existing caption: split at the separator, or at spaces where it is absent
    (a Danbooru tag file: `1girl long_hair`)."""
    cut = separator.strip()
    parts = text.split(cut) if cut and cut in text else text.split()
    return [part.strip() for part in parts if part.strip()]


def caption_key(tag: str) -> str:
    weighted = _WEIGHTED.match(tag.strip())
    return tag_key(weighted.group(1) if weighted else tag)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
