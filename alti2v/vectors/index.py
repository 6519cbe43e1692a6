"""--index: a nearest-neighbour index of every post in the dataset, kept in step with it.

Vectors come from the LevelDB records (the pixels --build stored), so no image is decoded twice;
a model whose input is not those pixels (a WD folder: 448, padded white) decodes each post's
image in imgs/ its own way instead, as --pred would.
The index is a usearch HNSW graph over L2-normalised vectors (inner product = cosine; chosen by
bench/vectors.py, see the README) plus `index.json`: which model, vocabulary and layer made it,
and per post its id, split, graph key and top tags. Run again, it adds the posts that are new in
the dataset and removes the ones gone; another model, vocabulary or layer rebuilds it.

Each save writes the graph under a new name, then replaces `index.json`, which names it, then
deletes the old graph: a reader, or a run killed at any point, sees one whole index. Saves happen
every SAVE_EVERY_POSTS added posts, so a long first run resumes where it stopped.

    summary = update_index(data, loaded, "logits")
    index = open_index(data, loaded, "logits")
    for neighbours in index.search(vectors, top=10): ...
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from usearch.index import Index

from alti2v import defaults
from alti2v.data.files import atomic_write_json, read_json
from alti2v.data.images import InputSpec
from alti2v.data.layout import DataDir, IndexFiles
from alti2v.data.posts import find_image
from alti2v.data.records import (
    DB,
    SPLITS,
    open_db,
    parse_record_key,
    read_meta,
    record_keys,
    unpack_record,
)
from alti2v.data.vocabulary import vocabulary_hash
from alti2v.errors import PipelineError, one_line
from alti2v.model.saved import LoadedModel
from alti2v.progress import SILENT, Progress
from alti2v.tag.select import ranked
from alti2v.vectors.extract import FileVector, VectorExtractor, vectors_of_files

log = logging.getLogger(__name__)

FORMAT = 1  # of index.json; another number rebuilds the index
CONNECTIVITY = 16  # HNSW links per node (M); bench/vectors.py measured recall at these settings
EXPANSION_ADD = 128  # candidates while inserting (efConstruction)
EXPANSION_SEARCH = 64  # candidates while searching (ef)
INDEX_TAGS = 5  # top predicted tags kept per post, shown with every result
SAVE_EVERY_POSTS = 4096  # added posts between saves: the most a killed first run redoes


class VectorIndexError(PipelineError):
    pass


@dataclass(frozen=True)
class Neighbour:
    score: float  # cosine similarity, 1 for the same vector
    post_id: str
    tags: list[tuple[str, float]]


def index_identity(loaded: LoadedModel, layer: str) -> dict:
    """What the vectors depend on: another value anywhere means other vectors."""
    return {
        "format": FORMAT,
        "model": loaded.folder.name,  # models/<time>/: one name per training run
        "vocab_hash": vocabulary_hash(loaded.tags),
        "layer": layer,
    }


class VectorIndex:
    """The graph and its posts; `posts` maps a post id to {"key", "split", "tags"}."""

    def __init__(self, folder: Path, identity: dict, graph: Index, posts: dict, next_key: int):
        self.folder, self.identity, self.graph = folder, identity, graph
        self.posts, self.next_key = posts, next_key
        self._post_of_key = {post["key"]: post_id for post_id, post in posts.items()}

    @classmethod
    def empty(cls, folder: Path, identity: dict, dim: int) -> VectorIndex:
        graph = Index(
            ndim=dim, metric="ip", dtype="f32", connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH,
        )  # fmt: skip
        return cls(folder, identity, graph, {}, 0)

    @classmethod
    def load(cls, folder: Path) -> VectorIndex | None:
        """The saved index, or None when there is none."""
        files = IndexFiles(folder)
        fix = f"delete {folder} and run --index"
        info = read_json(files.info, VectorIndexError, fix, missing=None)
        if info is None:
            return None
        try:
            graph = Index.restore(str(files.graph(info["graph"])))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
            message = f"{folder}: damaged index ({one_line(error)}); delete it and run --index"
            raise VectorIndexError(message) from None
        if graph is None:
            raise VectorIndexError(
                f"{folder}: {info['graph']} is missing; delete it and run --index"
            )
        return cls(folder, info["identity"], graph, info["posts"], info["next_key"])

    def add(self, post_ids: list[str], splits: list[str], vectors, tags: list) -> None:
        keys = np.arange(self.next_key, self.next_key + len(post_ids), dtype=np.uint64)
        self.graph.add(keys, vectors)
        self.next_key += len(post_ids)
        for post_id, split, key, post_tags in zip(post_ids, splits, keys, tags, strict=True):
            self.posts[post_id] = {"key": int(key), "split": split, "tags": post_tags}
            self._post_of_key[int(key)] = post_id

    def remove(self, post_ids: list[str]) -> None:
        keys = [self.posts.pop(post_id)["key"] for post_id in post_ids]
        if keys:
            self.graph.remove(np.array(keys, dtype=np.uint64))
        for key in keys:
            del self._post_of_key[key]

    def vectors(self, post_ids: list[str]) -> np.ndarray:
        keys = np.array([self.posts[post_id]["key"] for post_id in post_ids], dtype=np.uint64)
        return np.stack(self.graph.get(keys)).reshape(len(post_ids), -1)

    def search(self, vectors: np.ndarray, top: int) -> list[list[Neighbour]]:
        """The `top` nearest posts of each vector, most similar first."""
        if not self.posts:
            return [[] for _ in vectors]
        found = self.graph.search(vectors, min(top, len(self.posts)))
        # usearch answers one query with Matches (only the keys found), several with BatchMatches
        # (padded rows and their `counts`).
        counts = found.counts if len(vectors) > 1 else [len(found.keys)]
        keys = found.keys.reshape(len(vectors), -1)
        distances = found.distances.reshape(len(vectors), -1)
        results = []
        for row_keys, row_distances, count in zip(keys, distances, counts, strict=True):
            row = []
            for key, distance in zip(row_keys[:count], row_distances[:count], strict=True):
                post_id = self._post_of_key[int(key)]
                tags = [(tag, prob) for tag, prob in self.posts[post_id]["tags"]]
                row.append(Neighbour(1.0 - float(distance), post_id, tags))
            results.append(row)
        return results

    def save(self) -> None:
        """The graph under a new name, then index.json naming it, then the old graph goes."""
        self.folder.mkdir(parents=True, exist_ok=True)
        old = self._saved_graph_name()
        files = IndexFiles(self.folder)
        name = files.graph_name(self.next_key)
        self.graph.save(str(files.graph(name)))
        atomic_write_json(
            files.info,
            {"identity": self.identity, "graph": name, "next_key": self.next_key,
             "num_posts": len(self.posts), "posts": self.posts},
        )  # fmt: skip
        if old and old != name:
            files.graph(old).unlink(missing_ok=True)

    def _saved_graph_name(self) -> str | None:
        # The graph the index.json on disk names (None if it cannot tell): once the new one is
        # named there, the old one goes.
        try:
            info = read_json(IndexFiles(self.folder).info, VectorIndexError, "", missing={})
        except VectorIndexError:
            return None
        name = info.get("graph")
        return name if isinstance(name, str) else None


def open_index(data: DataDir, loaded: LoadedModel, layer: str) -> VectorIndex:
    """The index for queries with this model and layer; a clear error when there is none or
    another model made it."""
    folder = data.index_files(layer).folder
    index = VectorIndex.load(folder)
    if index is None:
        raise VectorIndexError(f"{folder}: no index of layer {layer}; run --index first")
    wanted = index_identity(loaded, layer)
    if index.identity != wanted:
        made_by = f"model {index.identity['model']}, layer {index.identity['layer']}"
        raise VectorIndexError(
            f"{folder}: made by {made_by}, not model {wanted['model']}, layer {layer}; "
            "run --index to rebuild it"
        )
    return index


def update_index(
    data: DataDir,
    loaded: LoadedModel,
    layer: str,
    batch_size: int = defaults.BATCH_SIZE,
    progress: Progress = SILENT,
) -> dict:
    """Bring the index in step with the dataset; return counts of what changed."""
    identity = index_identity(loaded, layer)
    folder = data.index_files(layer).folder
    index = VectorIndex.load(folder)
    rebuilt = index is not None and index.identity != identity
    if rebuilt:
        log.warning(
            "%s: made by model %s, layer %s; rebuilding it for model %s, layer %s",
            folder, index.identity["model"], index.identity["layer"], identity["model"], layer,
        )  # fmt: skip
    db = open_db(data.db)
    try:
        in_dataset = {
            parse_record_key(key)[1]: key for split in SPLITS for key in record_keys(db, split)
        }
        extractor = VectorExtractor(loaded, layer)
        if index is None or rebuilt:
            index = VectorIndex.empty(folder, identity, extractor.width)
        gone = sorted(set(index.posts) - set(in_dataset))
        new = {post_id: key for post_id, key in in_dataset.items() if post_id not in index.posts}
        index.remove(gone)
        unreadable: list[str] = []
        with progress(total=len(new), desc="indexing", unit=" img") as bar:
            since_save = 0
            found = _new_vectors(data, db, loaded, extractor, new, batch_size, unreadable)
            for chunk, vectors, probabilities in found:
                tags = [_stored_tags(row, loaded.tags) for row in probabilities]
                splits = [parse_record_key(new[post_id])[0] for post_id in chunk]
                index.add(chunk, splits, vectors, tags)
                bar.update(len(chunk))
                since_save += len(chunk)
                if since_save >= SAVE_EVERY_POSTS:
                    index.save()
                    since_save = 0
    finally:
        db.close()
    if new or gone or rebuilt or not IndexFiles(folder).info.is_file():
        index.save()
    return {
        "added": len(new) - len(unreadable),
        "removed": len(gone),
        "unreadable": len(unreadable),
        "total": len(index.posts),
        "rebuilt": rebuilt,
        "layer": layer,
        "model": identity["model"],
        "folder": folder,
    }


def _new_vectors(
    data: DataDir, db: DB, loaded: LoadedModel, extractor: VectorExtractor,
    keys: dict[str, bytes], batch_size: int, unreadable: list[str],
) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:  # fmt: skip
    """(post ids, vectors, probabilities) of the posts `keys` names, a batch at a time: from the
    stored records where they are the model's input, else from each post's image decoded the
    model's way, as --vec decodes files. A post whose image cannot be read is logged, added to
    `unreadable` and left out."""
    post_ids = list(keys)
    if InputSpec.of_model(loaded.info).reads_stored_pixels(read_meta(db, data.db)):
        for start in range(0, len(post_ids), batch_size):
            chunk = post_ids[start : start + batch_size]
            pixels = [unpack_record(db.get(keys[post_id]))[0] for post_id in chunk]
            yield chunk, *extractor(np.stack(pixels))
        return
    files = {}  # image path -> post id
    for post_id in post_ids:
        path = find_image(data.imgs, post_id)
        if path is None:
            log.error("%s: no image file for this post in imgs/; not indexed", data.imgs / post_id)
            unreadable.append(post_id)
        else:
            files[str(path)] = post_id

    def batch(results: list[FileVector]) -> tuple[list[str], np.ndarray, np.ndarray]:
        vectors = np.stack([result.vector for result in results])
        probabilities = np.stack([result.probabilities for result in results])
        return [files[result.image] for result in results], vectors, probabilities

    done: list[FileVector] = []
    for found in vectors_of_files(loaded, extractor, list(files), batch_size):
        if found.error is not None:
            log.error("%s; not indexed", found.error)
            unreadable.append(files[found.image])
            continue
        done.append(found)
        if len(done) == batch_size:
            yield batch(done)
            done = []
    if done:
        yield batch(done)


def _stored_tags(probabilities: np.ndarray, tags: list[str]) -> list[list]:
    # Kept with the post so that results show tags without a second forward pass.
    return [
        [tags[index], round(float(probabilities[index]), 4)]
        for index in ranked(probabilities, INDEX_TAGS)
    ]
