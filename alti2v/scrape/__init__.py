"""Fill `<data-dir>/imgs/` with tagged images: from a Danbooru-compatible site or a local folder.

Three modes share one storage and one set of skip rules:
- `scrape` (`danbooru.py`): the JSON API, paged by id;
- `html` (`html.py`): post pages read with BeautifulSoup, as the original project did;
- `import` (`importer.py`): a local folder of images with same-named `.txt` tag files.

`alti2v.cli.scrape` (danbooru_datasetgenerator.py's command line) parses the flags into
`ScrapeOptions` and calls `run.run`.
This module stays free of heavy imports so that `--help` is instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from alti2v.errors import PipelineError

MODES = ("scrape", "html", "import")
# `sample` is Danbooru's `large_file_url` (a JPEG about 850 px wide); the sizes are media_asset
# variants, each falling back to the next larger one when a post lacks it.
VARIANTS = ("sample", "original", "360x360", "720x720")
RATING_SCHEMES = ("auto", "current", "legacy")
# Network modes stop after this many new posts unless --limit says otherwise; import takes all.
DEFAULT_NETWORK_LIMIT = 1000


@dataclass(frozen=True)
class ScrapeOptions:
    """Everything one run needs; the defaults here are the CLI's defaults."""

    mode: str = "scrape"
    data_dir: Path = Path("data")
    base_url: str = "https://danbooru.donmai.us"
    tags: str = "kantai_collection"  # the original project's search; "" searches all posts
    # New posts at most; None: DEFAULT_NETWORK_LIMIT (all for import); 0: no limit.
    limit: int | None = None
    variant: str = "sample"
    include_deleted: bool = False
    allow_hosts: tuple[str, ...] = ()  # added to the base URL's host and *.donmai.us
    rating_scheme: str = "auto"
    rate: float = 1.0  # requests per second to the site, all requests together
    timeout: float = 30.0  # seconds, for connecting and for each read of a request
    retries: int = 5  # further tries after a 5xx, 429, connection error or short body
    backoff: float = 2.0  # seconds before the first retry; doubles with each retry
    max_wait: float = 120.0  # seconds, the most one backoff or Retry-After wait may last
    # Downloads of a post whose file failed or came back corrupt, over runs, before it is given
    # up; each later run retries it first.
    failed_attempts: int = 3
    start_id: int | None = None  # html mode: walk post ids downward from here
    source_dir: Path | None = None  # import mode: the folder to bring in
    login: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never printed or logged

    def effective_limit(self) -> int | None:
        """How many new posts this run may add; None means no limit."""
        if self.limit is None:
            return None if self.mode == "import" else DEFAULT_NETWORK_LIMIT
        return self.limit or None


class ScrapeError(PipelineError):
    """An expected failure; its message is one sentence saying what happened and what to do."""


class Stopped(Exception):
    """Ctrl-C arrived while waiting to retry: the run ends without finishing the current post."""
