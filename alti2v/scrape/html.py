"""Danbooru's HTML pages, read with BeautifulSoup as the original project did.

A post page `/posts/<id>` carries the post in the data attributes of its image container
(`<section id="image-container">` on older Danbooru, `class="image-container"` today):
`data-id`, `data-tags`, `data-rating`, `data-flags`, `data-file-url`, `data-large-file-url`,
`data-file-ext`, `data-md5`, `data-source`. Tag categories come from the sidebar's
`<li class="tag-type-N" data-tag-name=...>`. A search page `/posts?tags=..&page=b<id>` lists
`<article data-id=...>` previews. The legacy rating scheme shows as "Rating: Safe" in the sidebar.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from bs4 import BeautifulSoup, Tag

from alti2v.data.skips import BAD_ID, UNREADABLE_PAGE
from alti2v.scrape.danbooru import (
    MD5_PATTERN,
    current_rating,
    raise_for_status,
    valid_post_id,
)
from alti2v.scrape.http import PoliteSession
from alti2v.scrape.posts import Candidate

# Danbooru's tag category numbers, as in `tag-type-N`.
TAG_CATEGORIES = {"0": "general", "1": "artist", "3": "copyright", "4": "character", "5": "meta"}
# The word after "Rating:" in the sidebar: "Safe" exists only in the scheme before May 2022.
LEGACY_RATING_WORDS = frozenset({"safe"})


def fetch_post_page(session: PoliteSession, post_id: int) -> str | None:
    """The HTML of `/posts/<id>`, or None when there is no such post (HTTP 404)."""
    reply = session.get(f"{session.base_url}/posts/{post_id}")
    if reply.status == 404:
        return None
    raise_for_status(reply, has_login=session.auth is not None)
    return reply.text()


def fetch_search_ids(session: PoliteSession, tags: str, before_id: int | None) -> list[int]:
    """Post ids on one HTML search page, newest first, below `before_id` when it is given."""
    params = {"tags": tags}
    if before_id is not None:
        params["page"] = f"b{before_id}"
    reply = session.get(f"{session.base_url}/posts", params)
    raise_for_status(reply, has_login=session.auth is not None)
    soup = BeautifulSoup(reply.text(), "html.parser")
    ids = (
        valid_post_id(as_int(article.get("data-id"))) for article in soup.select("article[data-id]")
    )
    return sorted({post_id for post_id in ids if post_id is not None}, reverse=True)


def as_int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def image_container(soup: BeautifulSoup) -> Tag | None:
    for selector in ("section#image-container", "section.image-container", "[data-id][data-tags]"):
        found = soup.select_one(selector)
        if found is not None and found.get("data-id") is not None:
            return found
    return None


def page_rating_scheme(soup: BeautifulSoup, requested: str) -> str:
    """`current` or `legacy`: as requested, or (auto) from the sidebar's "Rating: <word>"."""
    if requested != "auto":
        return requested
    for item in soup.find_all("li"):
        words = item.get_text(" ", strip=True).split()
        if len(words) >= 2 and words[0] == "Rating:":
            return "legacy" if words[1].lower() in LEGACY_RATING_WORDS else "current"
    return "current"


def categorised_tags(soup: BeautifulSoup) -> dict[str, list[str]]:
    """Sidebar tags by category, e.g. {"general": [...], "artist": [...]}."""
    by_category: dict[str, list[str]] = {}
    for item in soup.select("li[data-tag-name]"):
        for css_class in item.get("class") or []:
            category = TAG_CATEGORIES.get(css_class.removeprefix("tag-type-"))
            if css_class.startswith("tag-type-") and category:
                by_category.setdefault(category, []).append(str(item["data-tag-name"]))
    return by_category


def candidate_from_page(
    page: str, post_id: int, variant: str, requested_scheme: str, site: str
) -> Candidate | str:
    """The post on a post page as a `Candidate`, or the skip reason."""
    soup = BeautifulSoup(page, "html.parser")
    container = image_container(soup)
    if container is None:
        return UNREADABLE_PAGE
    if as_int(container.get("data-id")) != post_id:
        return BAD_ID

    def attribute(name: str) -> str | None:
        value = container.get(name)
        return str(value) if value else None

    file_url = attribute("data-file-url")
    large_file_url = attribute("data-large-file-url") or file_url
    file_ext = attribute("data-file-ext")
    if file_ext is None and file_url:
        file_ext = urlsplit(file_url).path.rpartition(".")[2]
    md5 = (attribute("data-md5") or "").lower()
    if not md5 and file_url:
        # Danbooru names originals by their md5.
        md5 = urlsplit(file_url).path.rpartition("/")[2].partition(".")[0].lower()
    md5 = md5 if MD5_PATTERN.fullmatch(md5) else None
    flags = (attribute("data-flags") or "").split()
    scheme = page_rating_scheme(soup, requested_scheme)
    tags = (attribute("data-tags") or "").split()
    image_url = file_url if variant == "original" else large_file_url
    metadata: dict[str, object] = {
        "id": post_id,
        "rating": current_rating(attribute("data-rating"), scheme),
        "rating_raw": attribute("data-rating"),
        "rating_scheme": scheme,
        "site": site,
        "tag_string": " ".join(tags),
        "md5": md5,
        "source": attribute("data-source"),
        "file_url": file_url,
        "large_file_url": large_file_url,
        "file_ext": file_ext,
        "image_width": as_int(attribute("data-width")),
        "image_height": as_int(attribute("data-height")),
        "is_deleted": "deleted" in flags,
    }
    for category, names in categorised_tags(soup).items():
        metadata[f"tag_string_{category}"] = " ".join(names)
    return Candidate(
        post_id=post_id,
        tags=tags,
        metadata=metadata,
        file_ext=file_ext or "",
        image_url=image_url,
        md5=md5,
        image_is_original=image_url is not None and image_url == file_url,
        is_deleted="deleted" in flags,
    )
