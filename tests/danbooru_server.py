"""A Danbooru-compatible HTTP server on 127.0.0.1 for the scraper tests, built from real answers.

    with FakeDanbooru() as site:
        site.add_fixture_posts("posts_2023.json")
        run_cli(["--base-url", site.base_url, ...])
        site.requests  # every request it saw: path, query, User-Agent, login, time

It speaks `/posts.json` (tags, limit, `page=b<id>`, numbered pages with HTTP 410 past 1000,
HTTP 422 for more than 2 tags without a login, HTTP 401 for a wrong login), `/posts/<id>` and
`/posts?tags=` as HTML, and serves generated images whose md5 the posts carry. Misbehaviour is
switched on per path: 503 once or always, 429 with Retry-After once, a body cut short once or
always, a redirect, a post repeated at the top of the next page.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import html
import io
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# Real API answers; MANIFEST.md there says where each comes from.
FIXTURES = REPO / "tests" / "fixtures" / "danbooru"
SCRIPT = REPO / "danbooru_datasetgenerator.py"
VALID_LOGIN = "tester"
VALID_API_KEY = "k3y-that-must-never-be-printed"
# Flags that keep the tests fast: no politeness pauses worth waiting for.
FAST = ["--rate", "1000", "--backoff", "0.01", "--max-wait", "2", "--retries", "2", "--quiet"]


def load_fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def make_image(seed: int, image_format: str, size: tuple[int, int] = (48, 64)) -> bytes:
    """A small image whose pixels (and so md5) depend on `seed`."""
    image = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    image.putpixel((seed % size[0], (seed // size[0]) % size[1]), (255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


@dataclass
class SeenRequest:
    time: float  # time.monotonic() on arrival
    host: str
    path: str
    query: dict[str, str]
    user_agent: str
    login: str | None  # from HTTP Basic, whether right or wrong
    status: int = 0


@dataclass
class Behaviour:
    fail_once: set[str] = field(default_factory=set)  # paths answered 503 the first time
    fail_always: set[str] = field(default_factory=set)  # paths answered 503 every time
    throttle_once: dict[str, int] = field(default_factory=dict)  # path: Retry-After of one 429
    truncate_once: set[str] = field(default_factory=set)  # paths whose body is cut once
    truncate_always: set[str] = field(default_factory=set)
    repeat_ids: set[int] = field(default_factory=set)  # page b<id> also lists post <id>
    redirects: dict[str, str] = field(default_factory=dict)  # path: Location of a 302
    file_delay: float = 0.0  # seconds before each file is served
    page_size: int = 200  # the most posts one page holds, whatever `limit` asks
    legacy_html: bool = False  # the sidebar says "Rating: Safe" (pre-2022 Danbooru)


class FakeDanbooru:
    """The server; use as a context manager. Posts are kept newest first."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.site = self  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.posts: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.behaviour = Behaviour()
        self.requests: list[SeenRequest] = []
        self.lock = threading.Lock()
        self._served_once: set[tuple[str, str]] = set()
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeDanbooru:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # Building the site -------------------------------------------------------------------

    def add_post(self, post: dict, *, variants: bool = False) -> dict:
        """Add an API post, serving generated files at its URLs (rewritten to this server)."""
        post = copy.deepcopy(post)
        post_id = post["id"]
        extension = post.get("file_ext", "jpg")
        original = make_image(post_id, "PNG" if extension == "png" else "JPEG")
        md5 = hashlib.md5(original).hexdigest()
        folder = f"{md5[:2]}/{md5[2:4]}"
        paths = {
            "file_url": f"/original/{folder}/{md5}.{extension}",
            "large_file_url": f"/sample/{folder}/sample-{md5}.jpg",
            "preview_file_url": f"/preview/{folder}/{md5}.jpg",
        }
        self.files[paths["file_url"]] = original
        self.files[paths["large_file_url"]] = make_image(post_id, "JPEG", (85, 120))
        self.files[paths["preview_file_url"]] = make_image(post_id, "JPEG", (15, 20))
        post.update({key: self.base_url + path for key, path in paths.items()})
        post.update(md5=md5, file_size=len(original))
        if variants:
            listed = []
            for kind, image_format, size in (
                ("180x180", "JPEG", (18, 24)),
                ("360x360", "JPEG", (36, 48)),
                ("720x720", "WEBP", (72, 96)),
            ):
                path = f"/{kind}/{folder}/{md5}.{image_format.lower().replace('jpeg', 'jpg')}"
                self.files[path] = make_image(post_id, image_format, size)
                listed.append({"type": kind, "url": self.base_url + path, "file_ext": path[-3:]})
            listed += [
                {"type": "sample", "url": post["large_file_url"], "file_ext": "jpg"},
                {"type": "original", "url": post["file_url"], "file_ext": extension},
            ]
            post["media_asset"] = {"id": post_id, "md5": md5, "variants": listed}
        self.posts.append(post)
        self.posts.sort(key=lambda item: -item["id"])
        return post

    def add_fixture_posts(self, name: str, *, variants: bool = False) -> list[dict]:
        return [self.add_post(post, variants=variants) for post in load_fixture(name)]

    def add_clones(self, name: str, first_id: int, count: int) -> list[dict]:
        """`count` more posts copied from a fixture's real posts, with ids from `first_id` up."""
        real = load_fixture(name)
        return [
            self.add_post({**real[index % len(real)], "id": first_id + index})
            for index in range(count)
        ]

    def post(self, post_id: int) -> dict:
        return next(post for post in self.posts if post["id"] == post_id)

    def path_of(self, post_id: int, key: str = "large_file_url") -> str:
        return urlsplit(self.post(post_id)[key]).path

    # What it saw ------------------------------------------------------------------------

    def seen(self, path_prefix: str = "") -> list[SeenRequest]:
        with self.lock:
            return [request for request in self.requests if request.path.startswith(path_prefix)]

    def file_requests(self) -> list[SeenRequest]:
        return [request for request in self.seen() if not request.path.startswith("/posts")]

    # Answering --------------------------------------------------------------------------

    def once(self, kind: str, path: str) -> bool:
        """True the first time `kind` is asked for `path`."""
        with self.lock:
            if (kind, path) in self._served_once:
                return False
            self._served_once.add((kind, path))
            return True


def render_post_page(post: dict, legacy: bool) -> str:
    flags = " ".join(flag for flag in ("deleted", "banned") if post.get(f"is_{flag}"))
    attributes = {
        "data-id": post["id"],
        "data-tags": post.get("tag_string", ""),
        "data-rating": post.get("rating", ""),
        "data-flags": flags,
        "data-file-ext": post.get("file_ext", ""),
        "data-source": post.get("source", ""),
        "data-width": post.get("image_width", ""),
        "data-height": post.get("image_height", ""),
    }
    if post.get("file_url"):
        attributes |= {
            "data-md5": post.get("md5", ""),
            "data-file-url": post["file_url"],
            "data-large-file-url": post.get("large_file_url", ""),
        }
    attribute_text = " ".join(
        f'{name}="{html.escape(str(value))}"' for name, value in attributes.items()
    )
    tag_items = "".join(
        f'<li class="tag-type-{number}" data-tag-name="{html.escape(tag)}"><a>{tag}</a></li>'
        for number, category in (
            ("1", "artist"),
            ("3", "copyright"),
            ("4", "character"),
            ("0", "general"),
            ("5", "meta"),
        )
        for tag in post.get(f"tag_string_{category}", "").split()
    )
    words = {
        "g": "General",
        "s": "Safe" if legacy else "Sensitive",
        "q": "Questionable",
        "e": "Explicit",
    }
    return (
        "<!doctype html><html><body>"
        f'<section id="tag-list"><ul>{tag_items}</ul></section>'
        f'<section id="post-information"><ul><li id="post-info-id">ID: {post["id"]}</li>'
        f'<li id="post-info-rating">Rating: {words.get(post.get("rating"), "")}</li></ul></section>'
        f'<section id="image-container" class="image-container note-container" {attribute_text}>'
        '<img id="image"></section></body></html>'
    )


def render_search_page(posts: list[dict]) -> str:
    articles = "".join(
        f'<article id="post_{post["id"]}" class="post-preview" data-id="{post["id"]}"></article>'
        for post in posts
    )
    return f'<!doctype html><html><body><div id="posts">{articles}</div></body></html>'


class Handler(BaseHTTPRequestHandler):
    server_version = "FakeDanbooru/1.0"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read `site.requests` instead."""

    @property
    def site(self) -> FakeDanbooru:
        return self.server.site  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        login, password = self.credentials()
        seen = SeenRequest(
            time=time.monotonic(),
            host=self.headers.get("Host", ""),
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            user_agent=self.headers.get("User-Agent", ""),
            login=login,
        )
        with self.site.lock:
            self.site.requests.append(seen)
        seen.status = self.answer(seen, login, password)

    def credentials(self) -> tuple[str | None, str | None]:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None, None
        login, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return login, password

    def answer(self, seen: SeenRequest, login: str | None, password: str | None) -> int:
        site, behaviour, path = self.site, self.site.behaviour, seen.path
        if path in behaviour.throttle_once and site.once("429", path):
            return self.send(429, b"", headers={"Retry-After": str(behaviour.throttle_once[path])})
        if path in behaviour.fail_always or (
            path in behaviour.fail_once and site.once("503", path)
        ):
            return self.send(503, b"<html>Service Unavailable</html>", "text/html")
        if path in behaviour.redirects:
            return self.send(302, b"", headers={"Location": behaviour.redirects[path]})
        if login is not None and (login, password) != (VALID_LOGIN, VALID_API_KEY):
            return self.error(401, "SessionLoader::AuthenticationFailure", "Invalid API key")
        logged_in = login is not None
        if path in ("/posts.json", "/posts"):
            return self.search(seen.query, logged_in, as_html=path == "/posts")
        if path.startswith("/posts/"):
            return self.post_page(path.removeprefix("/posts/"))
        if path in site.files:
            time.sleep(behaviour.file_delay)
            body = site.files[path]
            cut = path in behaviour.truncate_always or (
                path in behaviour.truncate_once and site.once("cut", path)
            )
            return self.send(200, body, "application/octet-stream", cut_short=cut)
        return self.error(404, "ActiveRecord::RecordNotFound", "That record was not found.")

    def search(self, query: dict[str, str], logged_in: bool, as_html: bool) -> int:
        behaviour = self.site.behaviour
        if len(query.get("tags", "").split()) > 2 and not logged_in:
            return self.error(
                422,
                "PostQuery::TagLimitError",
                "You cannot search for more than 2 tags at a time. Upgrade your account to "
                "search for more tags at once.",
            )
        limit = min(int(query.get("limit") or 20), 200, behaviour.page_size)
        page = query.get("page", "1")
        posts = self.site.posts
        if page.startswith("b"):
            before = int(page[1:])
            chosen = [post for post in posts if post["id"] < before][:limit]
            if before in behaviour.repeat_ids:
                chosen = [post for post in posts if post["id"] == before] + chosen
        elif page.startswith("a"):
            after = int(page[1:])
            chosen = [post for post in posts if post["id"] > after][-limit:]
        else:
            number = int(page)
            if number > 1000:
                return self.error(
                    410,
                    "PaginationExtension::PaginationError",
                    "You cannot go beyond page 1000. Try narrowing your search terms, or "
                    "upgrade your account to go beyond page 1000.",
                )
            chosen = posts[(number - 1) * limit : number * limit]
        if as_html:
            return self.send(200, render_search_page(chosen).encode(), "text/html")
        return self.send(200, json.dumps(chosen).encode(), "application/json")

    def post_page(self, name: str) -> int:
        as_json = name.endswith(".json")
        post_id = name.removesuffix(".json")
        matches = [post for post in self.site.posts if str(post["id"]) == post_id]
        if not matches:
            return self.error(404, "ActiveRecord::RecordNotFound", "That record was not found.")
        if as_json:
            return self.send(200, json.dumps(matches[0]).encode(), "application/json")
        page = render_post_page(matches[0], self.site.behaviour.legacy_html)
        return self.send(200, page.encode(), "text/html")

    def error(self, status: int, error: str, message: str) -> int:
        body = json.dumps({"success": False, "error": error, "message": message}).encode()
        return self.send(status, body, "application/json")

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain",
        headers: dict[str, str] | None = None,
        cut_short: bool = False,
    ) -> int:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        # A cut body announces its full length and then the connection closes half-way.
        self.wfile.write(body[: len(body) // 2] if cut_short else body)
        return status


# The trap site ----------------------------------------------------------------------

CLONES = list(range(6148698, 6148688, -1))
TRAPS = {
    "banned": 6148686,
    "mp4": 6148685,
    "deleted": 6148684,
    "hostile_ext": 6148683,
    "foreign_host": 6148682,
    "duplicate": 6148681,
    "cut_always": 6148680,
    "cut_once": 6148679,
}
VARIANT_POSTS = (6148688, 6148687)  # with media_asset variants; 6148687 lacks 360x360
EXPECTED = {*CLONES, *VARIANT_POSTS, TRAPS["cut_once"]}
# Posts whose download fails: recorded in scrape-state.json for the next run to retry.
EXPECTED_FAILED = {TRAPS["cut_always"]}
EXPECTED_SKIPS = {
    "corrupt": 1,
    "deleted": 1,
    "duplicate_md5": 1,
    "no_file": 1,
    "not_image": 1,
    "refused_url": 1,
    "repeated": 1,
    "unsupported_type": 1,
}
# The clone with a hostile file URL; its bytes are a real JPEG.
HOSTILE_URL_CLONE = 6148690
FIRST_PAGE_LAST_ID = 6148694


def build_trap_site(site: FakeDanbooru) -> None:
    """The 10 real posts of posts_2023.json, each turned into one trap (banned, mp4, deleted,
    hostile file_ext, foreign host, duplicate md5, cut bodies), plus 10 clean clones; pages hold
    5 posts and one post repeats at the top of page 2."""
    site.add_fixture_posts("posts_2023.json", variants=True)
    for post in site.posts:
        if post["id"] not in VARIANT_POSTS:
            post.pop("media_asset")
    variants = site.post(6148687)["media_asset"]["variants"]
    variants[:] = [variant for variant in variants if variant["type"] != "360x360"]
    site.add_clones("posts_2023.json", first_id=6148689, count=10)

    banned = site.post(TRAPS["banned"])
    for key in ("file_url", "large_file_url", "preview_file_url", "md5"):
        banned.pop(key)
    banned["is_banned"] = True
    mp4 = site.post(TRAPS["mp4"])
    mp4["file_ext"] = "mp4"
    mp4["large_file_url"] = mp4["file_url"] = site.base_url + "/original/video.mp4"
    site.files["/original/video.mp4"] = b"\x00\x00\x00\x18ftypmp42" + bytes(64)
    site.post(TRAPS["deleted"])["is_deleted"] = True
    hostile = site.post(TRAPS["hostile_ext"])
    hostile["file_ext"] = "../../x"
    hostile["file_url"] = hostile["large_file_url"] = site.base_url + "/original/../../x"
    foreign = site.post(TRAPS["foreign_host"])
    for key in ("file_url", "large_file_url"):
        foreign[key] = foreign[key].replace("127.0.0.1", "localhost")
    duplicate, first = site.post(TRAPS["duplicate"]), site.post(VARIANT_POSTS[0])
    for key in ("md5", "file_url", "large_file_url"):
        duplicate[key] = first[key]
    site.behaviour.truncate_always.add(site.path_of(TRAPS["cut_always"]))
    site.behaviour.truncate_once.add(site.path_of(TRAPS["cut_once"]))
    site.behaviour.fail_once.add(site.path_of(CLONES[0]))
    clone = site.post(HOSTILE_URL_CLONE)
    hostile_path = "/sample/..%2F..%2F..%2Fevil.sh"
    site.files[hostile_path] = site.files[site.path_of(HOSTILE_URL_CLONE)]
    clone["large_file_url"] = site.base_url + hostile_path
    site.behaviour.page_size = 5
    site.behaviour.repeat_ids.add(FIRST_PAGE_LAST_ID)


def expected_summary(
    site: FakeDanbooru, mode: str, ids: set[int], skips: dict[str, int], failed: set[int]
) -> str:
    size = sum(len(site.files[site.path_of(post_id)]) for post_id in ids)
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(skips.items()))
    return (
        f"{mode}: downloaded {len(ids)} posts ({size} bytes), "
        f"skipped {sum(skips.values())} ({reasons}); "
        f"failed posts to retry next run: {len(failed)}\n"
    )


def run_cli(
    arguments: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """The scraper as a user runs it, in a fresh process, without Danbooru credentials unless
    `env` gives them."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("DANBOORU_")
    }
    environment |= env or {}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        cwd=REPO,
    )


def start_cli(arguments: list[str]) -> subprocess.Popen[str]:
    """The scraper in the background, for tests that interrupt it."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("DANBOORU_")
    }
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=REPO,
    )


def posts_on_disk(data_dir: Path) -> dict[int, set[str]]:
    """{post id: the suffixes of its files} for every post whose .txt exists."""
    imgs = data_dir / "imgs"
    ids = {int(path.stem) for path in imgs.glob("*.txt")}
    found: dict[int, set[str]] = {post_id: set() for post_id in ids}
    for path in imgs.iterdir():
        if path.stem.isdigit() and int(path.stem) in found:
            found[int(path.stem)].add(path.suffix)
    return found
