"""--similar and --duplicates: questions asked of the index, and their answers as text or JSON.

`--similar FILE...` gives each query image's most similar indexed posts (score, post id, the
post's image in imgs/, its top tags); `--sheet` draws them with the project's contact-sheet
renderer. `--duplicates` links every pair of indexed posts at or above a similarity threshold
(found through the index's neighbour search, so it stays fast on large sets) and reports the
connected groups: resized, recompressed or cropped copies of one picture.

    results = similar_files(loaded, index, data, ["query.png"], top=10)
    groups = duplicate_groups(index, threshold=0.995)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alti2v import defaults
from alti2v.data.layout import DataDir
from alti2v.data.posts import find_image
from alti2v.errors import PipelineError
from alti2v.model.saved import LoadedModel
from alti2v.tag.sheet import SheetCell, SheetLine, render_sheet
from alti2v.vectors.extract import VectorExtractor, vectors_of_files
from alti2v.vectors.index import Neighbour, VectorIndex

SHEET_TAGS = 3  # tag lines under each result on a contact sheet
SHEET_THUMB = 160  # pixels per image on a contact sheet: a query and ten results fit a screen


class DuplicatesError(PipelineError):
    pass


@dataclass(frozen=True)
class SimilarResult:
    image: str  # the query as the user gave it
    neighbours: list[tuple[Neighbour, str | None]] | None = None  # with the post's image file
    error: str | None = None


def similar_files(
    loaded: LoadedModel,
    index: VectorIndex,
    data: DataDir,
    paths: list[str],
    top: int = defaults.SIMILAR_TOP,
    batch_size: int = defaults.BATCH_SIZE,
) -> Iterator[SimilarResult]:
    """The `top` most similar indexed posts of each query file, in the order given."""
    extractor = VectorExtractor(loaded, index.identity["layer"])
    for found in vectors_of_files(loaded, extractor, paths, batch_size):
        if found.error is not None:
            yield SimilarResult(found.image, error=found.error)
            continue
        (neighbours,) = index.search(found.vector[np.newaxis], top)
        located = [(neighbour, _image_path(data, neighbour.post_id)) for neighbour in neighbours]
        yield SimilarResult(found.image, neighbours=located)


def format_similar_text(result: SimilarResult) -> str:
    lines = [f"{result.image}\n"]
    for rank, (neighbour, path) in enumerate(result.neighbours, start=1):
        tags = " ".join(tag for tag, _ in neighbour.tags)
        lines.append(
            f"  {rank:>2}. {neighbour.score:.4f}  post {neighbour.post_id}  {path}  {tags}\n"
        )
    return "".join(lines)


def format_similar_json(result: SimilarResult) -> str:
    if result.error is not None:
        record = {"image": result.image, "error": result.error}
    else:
        record = {
            "image": result.image,
            "neighbours": [
                {
                    "score": round(neighbour.score, 6),
                    "post_id": neighbour.post_id,
                    "path": path,
                    "tags": [{"tag": tag, "prob": prob} for tag, prob in neighbour.tags],
                }
                for neighbour, path in result.neighbours
            ],
        }
    return json.dumps(record, ensure_ascii=False) + "\n"


def render_similar_sheet(results: list[SimilarResult], out: Path) -> Path:
    """One row per query: the query, then its results with similarity bars and top tags."""
    answered = [result for result in results if result.error is None]
    columns = 1 + max((len(result.neighbours) for result in answered), default=0)
    cells = []
    for result in answered:
        cells.append(SheetCell(Path(result.image), f"query: {Path(result.image).name}", []))
        for rank, (neighbour, path) in enumerate(result.neighbours, start=1):
            lines = [SheetLine(f"similarity {neighbour.score:.3f}", max(neighbour.score, 0.0))]
            lines += [SheetLine(tag, prob) for tag, prob in neighbour.tags[:SHEET_TAGS]]
            image = Path(path) if path is not None else np.full((8, 8, 3), 200, dtype=np.uint8)
            cells.append(SheetCell(image, f"{rank}. post {neighbour.post_id}", lines))
        # Pad the row so that every query starts a new one.
        cells += [SheetCell(np.full((8, 8, 3), 246, np.uint8), "", [])] * (
            columns - 1 - len(result.neighbours)
        )
    return render_sheet(cells, out, columns=columns, thumb=SHEET_THUMB)


def duplicate_threshold(layer: str, given: float | None) -> float:
    """--duplicate-threshold, else the one measured for `layer`; a WD folder's foreign
    embedding has none measured."""
    if given is not None:
        return given
    if layer not in defaults.DUPLICATE_THRESHOLDS:
        raise DuplicatesError(
            f"--duplicates: no threshold is measured for the layer {layer!r} (a WD folder's "
            "embedding); give --duplicate-threshold"
        )
    return defaults.DUPLICATE_THRESHOLDS[layer]


def duplicate_groups(
    index: VectorIndex,
    threshold: float,
    neighbours: int = defaults.DUPLICATE_NEIGHBOURS,
    batch_size: int = 1024,
) -> list[list[tuple[str, float]]]:
    """Groups of posts linked by similarity >= `threshold`, each a list of (post id, its best
    similarity within the group), largest group first."""
    post_ids = list(index.posts)
    parent = {post_id: post_id for post_id in post_ids}
    best: dict[str, float] = {}

    def root(post_id: str) -> str:
        while parent[post_id] != post_id:
            parent[post_id] = parent[parent[post_id]]  # path halving keeps the trees flat
            post_id = parent[post_id]
        return post_id

    for start in range(0, len(post_ids), batch_size):
        chunk = post_ids[start : start + batch_size]
        # One extra neighbour: a post's nearest is itself.
        found_rows = index.search(index.vectors(chunk), neighbours + 1)
        for post_id, found in zip(chunk, found_rows, strict=True):
            for neighbour in found:
                if neighbour.post_id == post_id or neighbour.score < threshold:
                    continue
                parent[root(neighbour.post_id)] = root(post_id)
                for member in (post_id, neighbour.post_id):
                    best[member] = max(best.get(member, -1.0), neighbour.score)
    groups: dict[str, list[tuple[str, float]]] = {}
    for post_id in post_ids:
        if post_id in best:
            groups.setdefault(root(post_id), []).append((post_id, best[post_id]))
    return sorted(groups.values(), key=lambda group: (-len(group), group[0][0]))


def format_duplicates_text(number: int, group: list[tuple[str, float]], data: DataDir) -> str:
    members = "".join(
        f"  post {post_id}  {_image_path(data, post_id)}  best match {score:.4f}\n"
        for post_id, score in group
    )
    return f"group {number}: {len(group)} posts\n{members}"


def format_duplicates_json(group: list[tuple[str, float]], data: DataDir) -> str:
    posts = [
        {"post_id": post_id, "path": _image_path(data, post_id), "best_score": round(score, 6)}
        for post_id, score in group
    ]
    return json.dumps({"posts": posts}, ensure_ascii=False) + "\n"


def _image_path(data: DataDir, post_id: str) -> str | None:
    # None when the post's image has left imgs/ since --build.
    path = find_image(data.imgs, post_id)
    return str(path) if path is not None else None
