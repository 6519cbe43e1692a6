"""One run of the scraper: lock the data dir, walk the posts, apply the skip rules, store, report.

`run(options, progress)` runs the mode `options.mode` and returns a `RunResult` (the counts and
whether Ctrl-C stopped it); `progress` (alti2v.progress) draws its bar, the command line's.
Network modes walk ids downward and save the walk's cursor in `scrape-state.json` after every
stored post, so a run stopped by Ctrl-C or SIGKILL continues where it stopped; the
first Ctrl-C finishes the current post, a second aborts at once. A post whose file failed to
download is recorded there too, and each later run retries it first, `--failed-attempts` times
in all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from alti2v.data.skips import (
    CORRUPT,
    DOWNLOAD_FAILED,
    DUPLICATE_MD5,
    MISSING,
    ON_DISK,
    REFUSED_URL,
    REPEATED,
)
from alti2v.interrupt import StopOnCtrlC
from alti2v.progress import SILENT, Progress
from alti2v.scrape import ScrapeError, ScrapeOptions, Stopped
from alti2v.scrape.danbooru import (
    answer_rating_scheme,
    candidate_from_api,
    fetch_api_page,
    fetch_api_post,
)
from alti2v.scrape.html import candidate_from_page, fetch_post_page, fetch_search_ids
from alti2v.scrape.http import BodyTooLarge, PoliteSession, RefusedURL, ShortBody
from alti2v.scrape.importer import import_folder
from alti2v.scrape.posts import (
    RETRYABLE_REASONS,
    Candidate,
    PostStore,
    image_extension,
    md5_hex,
    remove_stale_temporaries,
    skip_reason,
    write_bytes,
)
from alti2v.scrape.state import RunLock, ScrapeState, Tally, save_run_record

log = logging.getLogger(__name__)

# A complete body that fails its md5 or does not decode is fetched this many times in all.
CONTENT_TRIES = 2

# The html id walk ends after this many ids without a post (below the site's first post, or a
# --start-id above its newest).
MAX_MISSING_IN_A_ROW = 100

# Produces a post's Candidate (or skip reason) once the cheap checks have passed.
Producer = Callable[[], "Candidate | str"]


@dataclass
class RunResult:
    tally: Tally
    interrupted: bool  # by Ctrl-C; the next run continues
    error: str | None = None  # an expected failure that ended the run after it had started


@dataclass
class Harvest:
    """What every post of a network run needs."""

    options: ScrapeOptions
    session: PoliteSession
    store: PostStore
    state: ScrapeState
    tally: Tally
    progress: object  # a bar from the run's Progress
    stop_event: threading.Event
    limit: int | None

    def should_stop(self) -> bool:
        return self.stop_event.is_set() or limit_reached(self.tally, self.limit)

    def take(self, post_id: int, produce: Producer) -> bool:
        """Handle one post; True if it was stored."""
        self.tally.seen += 1
        reason = self._store_post(post_id, produce)
        if reason:
            self.tally.skip(reason)
        self._remember_failure(post_id, reason)
        self.progress.set_postfix(
            seen=self.tally.seen,
            skipped=sum(self.tally.skipped.values()),
            MB=f"{self.tally.bytes / 1e6:.1f}",
            req_s=f"{self.session.requests_per_second():.2f}",
            refresh=False,
        )
        if reason is None:
            self.progress.update(1)
        return reason is None

    def _remember_failure(self, post_id: int, reason: str | None) -> None:
        """Record a post whose download failed so that a later run retries it; drop it from the
        record once it is stored or skipped for a lasting reason."""
        key = walk_key(self.options)
        if reason not in RETRYABLE_REASONS:
            if self.state.forget_failure(key, post_id) and reason:
                log.info("post %d: now skipped as %s; no longer retried", post_id, reason)
            return
        allowed = self.options.failed_attempts
        record = self.state.record_failure(key, post_id, reason, allowed)
        if record["given_up"]:
            self.tally.given_up += 1
            log.warning(
                "post %d: %s on attempt %d of %d; given up (it stays listed in %s)",
                post_id, reason, record["attempts"], allowed, self.state.path.name,
            )  # fmt: skip
        else:
            log.warning(
                "post %d: %s on attempt %d of %d; the next run retries it",
                post_id, reason, record["attempts"], allowed,
            )  # fmt: skip

    def _store_post(self, post_id: int, produce: Producer) -> str | None:
        if post_id in self.store.ids:
            return ON_DISK
        candidate = produce()
        if isinstance(candidate, str):
            return candidate
        reason = skip_reason(candidate, self.options.include_deleted)
        if reason:
            return reason
        if candidate.md5 in self.store.md5s:
            return DUPLICATE_MD5
        try:
            url = self.session.check_url(candidate.image_url or "")
        except RefusedURL as error:
            log.warning("post %d: %s", post_id, error)
            return REFUSED_URL
        expected_md5 = candidate.md5 if candidate.image_is_original else None
        fetched = download_image(self.session, url, expected_md5)
        if isinstance(fetched, str):
            return fetched
        data, extension = fetched
        metadata = {
            **candidate.metadata,
            "image_url": url,
            "image_variant": self.options.variant,
            "image_md5": md5_hex(data),
            "image_bytes": len(data),
        }
        self.store.write(post_id, extension, write_bytes(data), metadata, candidate.tags)
        self.tally.downloaded += 1
        self.tally.bytes += len(data)
        return None


def download_image(
    session: PoliteSession, url: str, expected_md5: str | None
) -> tuple[bytes, str] | str:
    """The image's bytes and extension, or why it was skipped. Never writes anything."""
    problem = ""
    for _ in range(CONTENT_TRIES):
        try:
            reply = session.get(url)
        except (ShortBody, BodyTooLarge) as error:
            log.warning("%s; skipped", error)
            return CORRUPT
        except RefusedURL as error:  # a redirect to a host off the allow-list
            log.warning("%s", error)
            return REFUSED_URL
        if reply.status != 200:
            log.warning("%s: HTTP %d; skipped", url, reply.status)
            return DOWNLOAD_FAILED
        if expected_md5 and md5_hex(reply.body) != expected_md5:
            problem = "md5 differs from the post's"
            continue
        extension = image_extension(reply.body, full_check=expected_md5 is None)
        if extension is None:
            problem = "not a decodable image"
            continue
        return reply.body, extension
    log.warning("%s: %s after %d tries; skipped", url, problem, CONTENT_TRIES)
    return CORRUPT


def retry_failed(harvest: Harvest, producer: Callable[[int], Producer]) -> None:
    """Before the walk: try again each post of this search that an earlier run failed to store."""
    for post_id, record in harvest.state.to_retry(walk_key(harvest.options)):
        if harvest.should_stop():
            return
        harvest.tally.retried += 1
        log.info(
            "post %d: retrying (attempt %d of %d; last time %s)",
            post_id, record["attempts"] + 1, harvest.options.failed_attempts, record["reason"],
        )  # fmt: skip
        if harvest.take(post_id, producer(post_id)):
            harvest.tally.retried_stored += 1
            log.info("post %d: stored on retry", post_id)


def walk_pages(
    harvest: Harvest, key: str, fetch_page: Callable[[int | None], list[tuple[int, Producer]]]
) -> None:
    """Walk a search newest first, page by page, from where the saved walk `key` stopped."""
    walk = harvest.state.walk(key)
    while not harvest.should_stop():
        cursor = walk["cursor"]
        page = sorted(fetch_page(cursor), key=lambda item: -item[0])
        if not page:
            finish_walk(harvest, walk)
            return
        for post_id, produce in page:
            if walk["floor"] is not None and post_id <= walk["floor"]:
                finish_walk(harvest, walk)
                return
            if walk["cursor"] is not None and post_id >= walk["cursor"]:
                # Posts shift between requests, so a page can repeat one already handled.
                harvest.tally.seen += 1
                harvest.tally.skip(REPEATED)
                continue
            if walk["ceiling"] is None:
                walk["ceiling"] = post_id
            stored = harvest.take(post_id, produce)
            walk["cursor"] = post_id
            if stored:
                harvest.state.save()
            if harvest.should_stop():
                break
        harvest.state.save()
        if walk["cursor"] == cursor:
            raise ScrapeError(
                f"{harvest.session.base_url} answered the same page twice; "
                "it may not support page=b<id> paging"
            )


def finish_walk(harvest: Harvest, walk: dict[str, int | None]) -> None:
    """The walk reached the end (or an earlier walk's top): the next run starts from the top."""
    covered = [value for value in (walk["floor"], walk["ceiling"]) if value is not None]
    walk.update(cursor=None, ceiling=None, floor=max(covered) if covered else None)
    harvest.state.save()


def scrape_api(harvest: Harvest) -> None:
    options = harvest.options
    site = harvest.session.base_url

    def one_post(post_id: int) -> Candidate | str:
        post = fetch_api_post(harvest.session, post_id)
        if post is None:
            return MISSING
        scheme = answer_rating_scheme([post], options.rating_scheme)
        return candidate_from_api(post, options.variant, scheme, site)

    def fetch_page(before_id: int | None) -> list[tuple[int, Producer]]:
        posts = fetch_api_page(harvest.session, options.tags, before_id)
        scheme = answer_rating_scheme(posts, options.rating_scheme)
        items = []
        for post in posts:
            candidate = candidate_from_api(post, options.variant, scheme, site)
            if isinstance(candidate, str):
                harvest.tally.seen += 1
                harvest.tally.skip(candidate)
            else:
                items.append((candidate.post_id, lambda candidate=candidate: candidate))
        return items

    retry_failed(harvest, lambda post_id: lambda: one_post(post_id))
    walk_pages(harvest, walk_key(options), fetch_page)


def scrape_html(harvest: Harvest) -> None:
    options = harvest.options
    session = harvest.session

    def post_page(post_id: int) -> Candidate | str:
        page = fetch_post_page(session, post_id)
        if page is None:
            return MISSING
        return candidate_from_page(
            page, post_id, options.variant, options.rating_scheme, session.base_url
        )

    def producer(post_id: int) -> Producer:
        return lambda: post_page(post_id)

    retry_failed(harvest, producer)
    if options.start_id is not None:
        walk_ids(harvest, walk_key(options), options.start_id, producer)
        return
    walk_pages(
        harvest,
        walk_key(options),
        lambda before_id: [
            (post_id, producer(post_id))
            for post_id in fetch_search_ids(session, options.tags, before_id)
        ],
    )


def walk_ids(
    harvest: Harvest, key: str, start_id: int, producer: Callable[[int], Producer]
) -> None:
    """Visit post ids downward from `start_id`, or from where the saved walk `key` stopped."""
    walk = harvest.state.walk(key)
    first = start_id if walk["cursor"] is None else walk["cursor"] - 1
    missing_in_a_row = 0
    for post_id in range(first, 0, -1):
        if harvest.should_stop():
            break
        missing_before = harvest.tally.skipped[MISSING]
        stored = harvest.take(post_id, producer(post_id))
        walk["cursor"] = post_id
        if stored:
            harvest.state.save()
        gone = harvest.tally.skipped[MISSING] > missing_before
        missing_in_a_row = missing_in_a_row + 1 if gone else 0
        if missing_in_a_row >= MAX_MISSING_IN_A_ROW:
            log.info("%d ids in a row have no post; stopping below %d", missing_in_a_row, post_id)
            break
    harvest.state.save()


def walk_key(options: ScrapeOptions) -> str:
    """Which saved walk a run continues: one per site, mode and search."""
    base = options.base_url.rstrip("/")
    if options.mode == "html" and options.start_id is not None:
        search = f"ids from {options.start_id}"
    else:
        search = f"tags={options.tags!r}"
    deleted = " with deleted" if options.include_deleted else ""
    return f"{options.mode} {base} {search}{deleted}"


def run(options: ScrapeOptions, progress: Progress = SILENT) -> RunResult:
    """Run one mode over `options.data_dir`. An expected failure before any work raises
    ScrapeError; one during the work ends it and is returned in `RunResult.error`."""
    if options.mode == "import" and (options.source_dir is None or not options.source_dir.is_dir()):
        raise ScrapeError(f"--src {options.source_dir} is not a folder; give the folder to import.")
    stop_event = threading.Event()
    tally = Tally()
    limit = options.effective_limit()
    interrupted = False
    error = None
    stop = StopOnCtrlC("stopping after the current post", stop_event)
    with RunLock(options.data_dir), stop:
        remove_stale_temporaries(options.data_dir)
        state = ScrapeState(options.data_dir)
        store = PostStore(options.data_dir)
        bar = progress(total=limit, unit="post", desc=options.mode)
        try:
            if options.mode == "import":
                import_folder(
                    options.source_dir,
                    store,
                    tally,
                    should_stop=lambda: stop_event.is_set() or limit_reached(tally, limit),
                    on_post=lambda: bar.update(tally.downloaded - bar.n),
                )
            else:
                session = PoliteSession(
                    options.base_url,
                    rate=options.rate,
                    timeout=options.timeout,
                    retries=options.retries,
                    backoff=options.backoff,
                    max_wait=options.max_wait,
                    allow_hosts=options.allow_hosts,
                    login=options.login,
                    api_key=options.api_key,
                    stop_event=stop_event,
                )
                harvest = Harvest(options, session, store, state, tally, bar, stop_event, limit)
                NETWORK_MODES[options.mode](harvest)
        except Stopped:
            interrupted = True
        except ScrapeError as failure:
            error = str(failure)
        finally:
            bar.close()
            tally.failed_pending = len(state.to_retry(walk_key(options)))
            save_run_record(state, options.mode, tally, run_record(options))
    return RunResult(tally, interrupted or stop_event.is_set(), error)


def limit_reached(tally: Tally, limit: int | None) -> bool:
    return limit is not None and tally.downloaded >= limit


def run_record(options: ScrapeOptions) -> dict[str, object]:
    """The options worth keeping beside the counts (never the key)."""
    return {
        "base_url": options.base_url,
        "tags": options.tags,
        "variant": options.variant,
        "include_deleted": options.include_deleted,
        "source_dir": str(options.source_dir) if options.source_dir else None,
    }


NETWORK_MODES: dict[str, Callable[[Harvest], None]] = {"scrape": scrape_api, "html": scrape_html}
