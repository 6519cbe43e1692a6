"""Tags of different vocabularies matched by name, so that every model is judged on one truth.

A tag's key is its name lowercased, spaces and underscores alike (`alti2v.tag.select.tag_key`,
as --pred's filters compare tags), and a rating in either spelling the dataset uses for it:
`rating:g` and `rating:general` are one key (`alti2v.data.posts.RATING_TAGS`); a WD folder's
rating rows read `rating:<name>` already (alti2v.model.wd_folder).

`Columns` are the tags of one scorer that are judged, those whose truth is known: on the
dataset's eval split the dataset's vocabulary (its records hold no other labels); with
--eval-dir every tag, since a post's .txt lists its tags and any other one is absent.

    columns = Columns.judged(loaded.tags, dataset_keys)
    columns.labels(post_truth_keys)   # the judged columns a post is positive in
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np

from alti2v.data.posts import RATING_TAGS
from alti2v.tag.select import tag_key


def truth_key(tag: str) -> str:
    """The spelling tags are matched by: `Long Hair` and `long_hair`, `rating:g` and
    `rating:general` agree."""
    key = tag_key(tag)
    rating = key.removeprefix("rating:")
    return RATING_TAGS.get(rating, key) if rating != key else key


@dataclass(frozen=True)
class Columns:
    """The judged tags of one scorer, in its output order, each key once."""

    tags: list[str]  # spelled as the scorer spells them
    outputs: np.ndarray  # each judged tag's column among the scorer's outputs
    index: dict[str, int]  # key -> judged column

    @classmethod
    def judged(cls, tags: list[str], known: Collection[str] | None) -> Columns:
        """The tags whose key is `known` (every tag when None); of two tags with one key, the
        first."""
        index: dict[str, int] = {}
        outputs = []
        for output, tag in enumerate(tags):
            key = truth_key(tag)
            if key not in index and (known is None or key in known):
                index[key] = len(outputs)
                outputs.append(output)
        return cls([tags[output] for output in outputs], np.array(outputs, np.int64), index)

    @property
    def keys(self) -> list[str]:
        return list(self.index)

    def labels(self, keys: Iterable[str]) -> list[int]:
        """The judged columns of the tags keyed `keys`."""
        return [self.index[key] for key in keys if key in self.index]

    def positions_in(self, other: Columns) -> np.ndarray:
        """For each of these columns, the column of `other` with the same key, -1 for none."""
        return np.array([other.index.get(key, -1) for key in self.index], dtype=np.int64)


def take(values: np.ndarray | None, positions: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """`values` at `positions` (`Columns.positions_in`), `fill` where a position is -1 or there
    are no values."""
    taken = np.full(len(positions), fill, dtype=np.float64)
    if values is not None:
        found = positions >= 0
        taken[found] = values[positions[found]]
    return taken
