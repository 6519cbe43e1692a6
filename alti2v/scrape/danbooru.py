"""Danbooru's JSON API: pages of posts, a post turned into a `Candidate`, and ratings.

`fetch_api_page(session, tags, before_id)` asks `/posts.json?tags=..&limit=200&page=b<id>`
(id-descending paging has no page cap; numbered pages stop at 1000); `fetch_api_post` asks
`/posts/<id>.json` for one post, to retry a failed download. `candidate_from_api`
picks the file for the chosen variant and writes the rating in today's meaning: an answer from
before May 2022, when `s` meant safe and there was no `g`, is recognised by
`answer_rating_scheme` and its `s` becomes `g` (the raw letter is kept as `rating_raw`).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from alti2v.data.posts import RATING_TAGS
from alti2v.data.skips import BAD_ID
from alti2v.scrape import ScrapeError
from alti2v.scrape.http import PoliteSession, Reply
from alti2v.scrape.posts import Candidate

PAGE_LIMIT = 200  # the API's maximum for posts
# Danbooru renamed s(afe) to g(eneral) and added s(ensitive) in May 2022. An answer whose every
# post was last updated before this cannot come from the new scheme: since then every `s` has
# been set by an edit, which moves updated_at.
RATING_SCHEME_CHANGE = datetime(2022, 5, 1, tzinfo=timezone.utc)
LEGACY_TO_CURRENT = {"s": "g", "q": "q", "e": "e"}
# Smallest first: a variant a post lacks falls back to the next larger one.
SIZE_ORDER = ("180x180", "360x360", "720x720", "sample", "original")
# Copied from the API's post into the .json, where present.
KEPT_FIELDS = (
    "id",
    "md5",
    "source",
    "file_url",
    "large_file_url",
    "file_ext",
    "file_size",
    "image_width",
    "image_height",
    "created_at",
    "updated_at",
    "score",
    "parent_id",
    "pixiv_id",
    "is_deleted",
    "tag_string",
    "tag_string_general",
    "tag_string_character",
    "tag_string_copyright",
    "tag_string_artist",
    "tag_string_meta",
)
MD5_PATTERN = re.compile(r"[0-9a-f]{32}")


def fetch_api_page(session: PoliteSession, tags: str, before_id: int | None) -> list[dict]:
    """One page of posts, newest first, all with ids below `before_id` when it is given."""
    params = {"tags": tags, "limit": str(PAGE_LIMIT)}
    if before_id is not None:
        params["page"] = f"b{before_id}"
    reply = session.get(f"{session.base_url}/posts.json", params)
    raise_for_status(reply, has_login=session.auth is not None)
    answer = json_answer(reply, list, "a list of posts")
    return [post for post in answer if isinstance(post, dict)]


def fetch_api_post(session: PoliteSession, post_id: int) -> dict | None:
    """One post from `/posts/<id>.json`, or None when there is no such post (HTTP 404)."""
    reply = session.get(f"{session.base_url}/posts/{post_id}.json")
    if reply.status == 404:
        return None
    raise_for_status(reply, has_login=session.auth is not None)
    return json_answer(reply, dict, "a post")


def json_answer(reply: Reply, kind: type, what: str) -> Any:
    """The reply's JSON if it is a `kind`; else a ScrapeError saying what came instead."""
    try:
        answer = reply.json()
    except ValueError as error:
        raise ScrapeError(
            f"{reply.url} did not answer JSON; is --base-url a Danbooru site?"
        ) from error
    if not isinstance(answer, kind):
        raise ScrapeError(f"{reply.url} answered {type(answer).__name__}, not {what}")
    return answer


def raise_for_status(reply: Reply, has_login: bool) -> None:
    """Turn a refusal of the site into one sentence that says what to do."""
    if reply.status == 200:
        return
    said = server_message(reply)
    if reply.status == 422:
        raise ScrapeError(
            f"The site refused the search (HTTP 422{said}): anonymous searches allow 2 tags, "
            "so set DANBOORU_LOGIN and DANBOORU_API_KEY or search fewer tags."
        )
    if reply.status == 401 and has_login:
        raise ScrapeError(
            f"The site rejected the login (HTTP 401{said}): check DANBOORU_LOGIN and "
            "DANBOORU_API_KEY (the key is on your Danbooru profile page)."
        )
    if reply.status == 401:
        raise ScrapeError(
            f"The site wants a login (HTTP 401{said}): set DANBOORU_LOGIN and DANBOORU_API_KEY."
        )
    if reply.status == 403:
        raise ScrapeError(
            f"The site refused access (HTTP 403{said}): check the login, or lower --rate."
        )
    if reply.status == 410:
        raise ScrapeError(f"The site refused the page (HTTP 410{said}): narrow the search.")
    raise ScrapeError(f"{reply.url} answered HTTP {reply.status}{said}; check --base-url.")


def server_message(reply: Reply) -> str:
    """`: <the site's own explanation>` from a Danbooru error body, or ''."""
    try:
        message = reply.json().get("message")  # type: ignore[union-attr]
    except (ValueError, AttributeError):
        return ""
    if not isinstance(message, str) or not message.strip():
        return ""
    return ": " + " ".join(message.split())[:200]


def answer_rating_scheme(posts: list[dict], requested: str) -> str:
    """`current` or `legacy` for one answer: as requested, or (auto) judged from the answer."""
    if requested != "auto":
        return requested
    if any(post.get("rating") == "g" for post in posts):
        return "current"
    times = [parse_time(post.get(key)) for post in posts for key in ("updated_at", "created_at")]
    known = [time for time in times if time is not None]
    if known and max(known) < RATING_SCHEME_CHANGE:
        return "legacy"
    return "current"


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def current_rating(raw: object, scheme: str) -> str | None:
    """The rating letter in today's meaning (g/s/q/e), or None if the site's letter is unknown."""
    if scheme == "legacy":
        return LEGACY_TO_CURRENT.get(raw)  # type: ignore[arg-type]
    return raw if raw in RATING_TAGS else None


def choose_image(post: dict, variant: str) -> tuple[str | None, bool]:
    """The URL to download for `variant`, and whether it is the original file."""
    original = text_or_none(post.get("file_url"))
    sample = text_or_none(post.get("large_file_url")) or original
    media_asset = post.get("media_asset")
    listed = media_asset.get("variants") if isinstance(media_asset, dict) else None
    sized = {
        item.get("type"): text_or_none(item.get("url"))
        for item in (listed if isinstance(listed, list) else [])
        if isinstance(item, dict)
    }
    urls = {**sized, "sample": sample, "original": original}
    for size in SIZE_ORDER[SIZE_ORDER.index(variant) :]:
        if urls.get(size):
            return urls[size], urls[size] == original
    return None, False


def text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def valid_post_id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def candidate_from_api(post: dict, variant: str, scheme: str, site: str) -> Candidate | str:
    """A post of the API as a `Candidate`, or the skip reason if it has no usable id."""
    post_id = valid_post_id(post.get("id"))
    if post_id is None:
        return BAD_ID
    tag_string = post.get("tag_string")
    tags = tag_string.split() if isinstance(tag_string, str) else []
    md5 = post.get("md5")
    md5 = md5.lower() if isinstance(md5, str) and MD5_PATTERN.fullmatch(md5.lower()) else None
    image_url, is_original = choose_image(post, variant)
    metadata = {key: post[key] for key in KEPT_FIELDS if key in post}
    metadata.update(
        rating=current_rating(post.get("rating"), scheme),
        rating_raw=post.get("rating"),
        rating_scheme=scheme,
        site=site,
    )
    return Candidate(
        post_id=post_id,
        tags=tags,
        metadata=metadata,
        file_ext=str(post.get("file_ext") or ""),
        image_url=image_url,
        md5=md5,
        image_is_original=is_original,
        is_deleted=post.get("is_deleted") is True,
    )
