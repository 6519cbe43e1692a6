"""The one HTTP helper every request of the scraper goes through.

`PoliteSession(base_url, ...).get(url)` returns a `Reply` with the whole body, after:
- refusing URLs that are not http(s) or not on an allowed host (redirects are checked too);
- waiting so that requests start at least 1/rate seconds apart, all hosts together;
- retrying 5xx, 429, connection errors and short bodies a bounded number of times, with
  exponential backoff or the server's Retry-After, each wait capped at `max_wait`;
- sending an honest User-Agent, and HTTP Basic credentials only to the API's own host.
A server that keeps failing raises `ServerFailing`; a body that stays short raises `ShortBody`.
"""

from __future__ import annotations

import email.utils
import fnmatch
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit

import requests

from alti2v import PROJECT_URL, __version__
from alti2v.scrape import ScrapeError, Stopped

log = logging.getLogger(__name__)

USER_AGENT = f"alt-i2v/{__version__} (+{PROJECT_URL})"
# Hosts that serve Danbooru's files (cdn.donmai.us, raikou*.donmai.us) besides the API's own host.
DEFAULT_ALLOWED_HOSTS = ("*.donmai.us",)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
# Danbooru's largest originals are about 100 MB; a body past this is not an image we want.
MAX_BODY_BYTES = 256 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
# The read timeout bounds each stall; this bounds a server that drips bytes (times --timeout).
TOTAL_TIME_FACTOR = 20


class RefusedURL(ScrapeError):
    """A URL outside the allow-list (scheme or host); it is reported and never fetched."""


class ServerFailing(ScrapeError):
    """The server kept failing (5xx, 429, connection errors) after every retry."""


class ShortBody(ScrapeError):
    """The body kept arriving shorter than announced, or too slowly."""


class BodyTooLarge(ScrapeError):
    """The body is larger than MAX_BODY_BYTES; not retried."""


@dataclass(frozen=True)
class Reply:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body.decode("utf-8"))

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """`host` matches one of `patterns` (exact names or `*.example.com`)."""
    host = host.lower().rstrip(".")
    return any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in patterns)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number of seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class PoliteSession:
    """A requests.Session with the site's manners; one per run, used by one thread."""

    def __init__(
        self,
        base_url: str,
        *,
        rate: float,
        timeout: float,
        retries: int,
        backoff: float,
        max_wait: float,
        allow_hosts: tuple[str, ...] = (),
        login: str | None = None,
        api_key: str | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ScrapeError(
                f"--base-url {base_url!r} is not an http(s) URL; give e.g. https://danbooru.donmai.us."
            )
        self.base_url = base_url.rstrip("/")
        self.api_host = parts.hostname.lower()
        self.allowed_hosts = (self.api_host, *DEFAULT_ALLOWED_HOSTS, *allow_hosts)
        self.interval = 1.0 / rate
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.stop_event = stop_event or threading.Event()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.auth = requests.auth.HTTPBasicAuth(login, api_key) if login and api_key else None
        self.request_count = 0
        self.first_request_at: float | None = None
        self._next_start = 0.0

    def check_url(self, url: str) -> str:
        """`url` made absolute against the base URL, or RefusedURL if it is not allowed."""
        absolute = urljoin(self.base_url + "/", url)
        parts = urlsplit(absolute)
        if parts.scheme not in ("http", "https"):
            raise RefusedURL(f"refused {url!r}: only http and https are fetched")
        if not parts.hostname or not host_allowed(parts.hostname, self.allowed_hosts):
            raise RefusedURL(
                f"refused {url!r}: host not on the allow-list (add it with --allow-host)"
            )
        return absolute

    def requests_per_second(self) -> float:
        if self.first_request_at is None or self.request_count < 2:
            return 0.0
        elapsed = time.monotonic() - self.first_request_at
        return (self.request_count - 1) / elapsed if elapsed > 0 else 0.0

    def get(self, url: str, params: dict[str, str] | None = None) -> Reply:
        """GET `url` politely; any final status is returned except those worth retrying."""
        url = self.check_url(url)
        redirects = 0
        attempt = 0
        while True:
            try:
                reply = self._fetch_once(url, params)
            except ShortBody as error:
                failure, delay, short = str(error), None, True
            except (requests.ConnectionError, requests.Timeout) as error:
                failure, delay, short = type(error).__name__, None, False
            else:
                if reply.status in REDIRECT_STATUSES and "location" in reply.headers:
                    redirects += 1
                    if redirects > MAX_REDIRECTS:
                        raise ServerFailing(f"{url} redirected more than {MAX_REDIRECTS} times")
                    url = self.check_url(urljoin(url, reply.headers["location"]))
                    params = None
                    continue
                if reply.status not in RETRY_STATUSES:
                    return reply
                failure = f"HTTP {reply.status}"
                delay = retry_after_seconds(reply.headers.get("retry-after"))
                short = False
            if attempt >= self.retries and short:
                raise ShortBody(f"{url}: {failure} {attempt + 1} times in a row")
            if attempt >= self.retries:
                host = urlsplit(url).hostname
                raise ServerFailing(
                    f"{host} kept failing ({failure}) after {attempt + 1} tries; try again later"
                )
            if delay is None:
                delay = self.backoff * 2**attempt
            delay = min(delay, self.max_wait)
            attempt += 1
            log.warning("%s: %s; retry %d/%d in %.1f s", url, failure, attempt, self.retries, delay)
            if self.stop_event.wait(delay):
                raise Stopped()

    def _fetch_once(self, url: str, params: dict[str, str] | None) -> Reply:
        self._wait_turn()
        deadline = time.monotonic() + self.timeout * TOTAL_TIME_FACTOR
        auth = self.auth if urlsplit(url).hostname == self.api_host else None
        with self.session.get(
            url,
            params=params,
            auth=auth,
            timeout=self.timeout,
            allow_redirects=False,
            stream=True,
        ) as response:
            body = bytearray()
            try:
                for chunk in response.iter_content(CHUNK_BYTES):
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise BodyTooLarge(f"{url}: body larger than {MAX_BODY_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise ShortBody("body too slow")
            except requests.exceptions.ChunkedEncodingError as error:
                raise ShortBody("short body") from error
            headers = {key.lower(): value for key, value in response.headers.items()}
            return Reply(response.url, response.status_code, headers, bytes(body))

    def _wait_turn(self) -> None:
        now = time.monotonic()
        if now < self._next_start:
            time.sleep(self._next_start - now)
            now = time.monotonic()
        self._next_start = now + self.interval
        self.request_count += 1
        if self.first_request_at is None:
            self.first_request_at = now
