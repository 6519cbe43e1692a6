"""Progress of long stages, reported without a progress-bar library in the stages.

A stage takes `progress: Progress = SILENT` and calls it exactly as it would call tqdm:

    for post in progress(iter_posts(imgs), desc="counting tags", unit=" posts"):
        ...
    with progress(total=len(keys), desc="packing", unit=" img") as bar:
        bar.update(len(chunk))

The command line passes a tqdm factory (`alti2v.cli.common`), or SILENT under --quiet; library
callers and tests get SILENT by default. Only the subset of tqdm used here is promised: an
iterable, `total`, `desc`, `unit`, `initial`, and on the bar `update`, `set_postfix`, `refresh`,
`close` and a writable `total`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any


class SilentBar:
    """A bar that draws nothing: what every stage gets unless the command line asks for bars."""

    def __init__(self, iterable: Iterable | None = None, total: float | None = None, **_: Any):
        self.iterable = iterable
        self.total = total
        self.n = 0

    def __iter__(self) -> Iterator:
        return iter(self.iterable if self.iterable is not None else ())

    def __enter__(self) -> SilentBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def update(self, count: float = 1) -> None:
        self.n += count

    def set_postfix(self, *_: Any, **__: Any) -> None:
        return None

    def refresh(self) -> None:
        return None

    def close(self) -> None:
        return None


# progress(iterable=None, *, total=None, desc=None, unit=None, initial=0) -> a bar
Progress = Callable[..., Any]
SILENT: Progress = SilentBar
