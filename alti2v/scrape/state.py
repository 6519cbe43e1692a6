"""The scraper's run state: `scrape-state.json` (how far each search got, which posts failed),
the `.scrape.lock` that keeps two runs off one data dir, and the counts of a run (`Tally`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from alti2v.data.files import atomic_write_json, read_json
from alti2v.data.layout import DataDir
from alti2v.scrape import ScrapeError


@dataclass
class Tally:
    """What a run did, for the progress bar and the summary line (alti2v.cli.scrape)."""

    seen: int = 0
    downloaded: int = 0
    bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    retried: int = 0  # posts that failed in an earlier run, tried again
    retried_stored: int = 0  # of those, stored this time
    given_up: int = 0  # posts that used their last attempt in this run
    failed_pending: int = 0  # failed posts left for the next run to retry

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def as_dict(self) -> dict[str, object]:
        return {
            "seen": self.seen,
            "downloaded": self.downloaded,
            "bytes": self.bytes,
            "skipped": dict(sorted(self.skipped.items())),
            "retried": self.retried,
            "retried_stored": self.retried_stored,
            "given_up": self.given_up,
            "failed_pending": self.failed_pending,
        }


class RunLock:
    """An exclusive lock on the data dir, released by the kernel even after SIGKILL."""

    def __init__(self, data_dir: Path) -> None:
        self.path = DataDir(data_dir).scrape_lock
        self.handle = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.path.open("a")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one run at a time is on the user
            return self
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            self.handle.close()
            raise ScrapeError(
                f"another scraper is using {self.path.parent}; wait for it to finish"
            ) from error
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.handle:
            self.handle.close()


class ScrapeState:
    """`scrape-state.json`: per search, how far the id-descending walk got and which posts failed.

    A walk keeps `cursor` (every post above it was handled), `ceiling` (the first id it saw) and
    `floor` (ids at or below it were covered by an earlier complete walk, so a new walk from the
    top stops there). Handled is not stored: like gallery-dl's archive, a post counts as done
    only once it is on disk, so `failed` keeps, per search, each post whose download failed
    (`{"<id>": {"reason", "attempts", "given_up"}}`) until a retry stores it or it runs out of
    attempts; given-up posts stay listed for the user to see. The file is rewritten atomically
    after each stored or failed post.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = DataDir(data_dir).scrape_state
        self.data = read_json(
            self.path, ScrapeError, "delete it to start the walks afresh", missing={}
        )
        self.data.setdefault("walks", {})
        failed = self.data.setdefault("failed", {})
        if not well_formed_failures(failed):
            raise ScrapeError(
                f'{self.path}: "failed" is not as this scraper writes it '
                '({"<search>": {"<post id>": {"reason", "attempts", "given_up"}}}); '
                "fix it, or delete the file to start the walks afresh"
            )

    def walk(self, key: str) -> dict[str, int | None]:
        return self.data["walks"].setdefault(key, {"cursor": None, "ceiling": None, "floor": None})

    def to_retry(self, key: str) -> list[tuple[int, dict]]:
        """The failed posts of the search `key` with attempts left, newest first."""
        waiting = [
            (int(post_id), record)
            for post_id, record in self.data["failed"].get(key, {}).items()
            if not record.get("given_up")
        ]
        return sorted(waiting, key=lambda item: -item[0])

    def record_failure(self, key: str, post_id: int, reason: str, max_attempts: int) -> dict:
        """Count one more failed attempt at `post_id` and save; returns its record."""
        # By id as a string: JSON keys are strings.
        failed = self.data["failed"].setdefault(key, {})
        record = failed.setdefault(str(post_id), {"attempts": 0})
        record["reason"] = reason
        record["attempts"] += 1
        record["given_up"] = record["attempts"] >= max_attempts
        self.save()
        return record

    def forget_failure(self, key: str, post_id: int) -> bool:
        """Drop `post_id` from the failed posts (stored, or no longer wanted); True if listed."""
        if self.data["failed"].get(key, {}).pop(str(post_id), None) is None:
            return False
        self.save()
        return True

    def save(self) -> None:
        atomic_write_json(self.path, self.data)


def well_formed_failures(failed: object) -> bool:
    """`failed` has the shape ScrapeState writes, so that a hand-edited file fails here, at once."""
    return isinstance(failed, dict) and all(
        isinstance(records, dict)
        and all(
            post_id.isdigit() and isinstance(record, dict) and type(record.get("attempts")) is int
            for post_id, record in records.items()
        )
        for records in failed.values()
    )


def save_run_record(state: ScrapeState, mode: str, tally: Tally, options_record: dict) -> None:
    """Keep the last run's counts beside the walks (the metadata record of this stage)."""
    state.data["last_run"] = {"mode": mode, **options_record, **tally.as_dict()}
    state.save()
