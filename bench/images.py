"""Large JPEG files for the benchmarks: synthetic illustrations upscaled to Danbooru's sizes."""

from __future__ import annotations

import io
import multiprocessing
from pathlib import Path

import numpy as np
from PIL import Image

import synthetic
from alti2v.data.files import atomic_write_bytes, atomic_write_json, atomic_write_text

# Danbooru originals: about 1500x2000 and 300-800 KB as JPEG. Upscaled drawings are too smooth
# to weigh that much, so each gets luma grain (about camera or paper noise, sigma in 0-255 steps);
# the quality steps down from 90 only if a file would pass 800 KB.
DANBOORU_SIZE = (1500, 2000)  # width, height of a portrait post; landscape ones are turned
GRAIN_SIGMA = 3.0
JPEG_QUALITIES = (95, 90, 85, 80)
MAX_JPEG_BYTES = 800 * 1024
MIN_JPEG_BYTES = 300 * 1024
# Drawn once, kept for later runs (make clean removes bench/results/).
DANBOORU_CACHE = Path(__file__).resolve().parent / "results" / "danbooru-posts"


def large_jpegs(
    folder: Path, count: int, size: tuple[int, int], seed: int = 0, prefix: str = ""
) -> list[Path]:
    """`count` drawn posts resized to `size` (width, height), saved at JPEG quality 90."""
    paths = []
    for index in range(count):
        image, _, _ = synthetic.draw_post(seed, index + 1)
        path = folder / f"{prefix}{index}.jpg"
        image.convert("RGB").resize(size).save(path, quality=90)
        paths.append(path)
    return paths


def sample_posts(imgs: Path, count: int, seed: int = 3) -> None:
    """Posts 1..count in `imgs` as Danbooru's "sample" download: 850x1100, JPEG for even ids and
    PNG for odd ones (originals are often PNG), each with its .txt."""
    imgs.mkdir(parents=True, exist_ok=True)
    for post_id in range(1, count + 1):
        image, tags, _ = synthetic.draw_post(seed, post_id)
        extension = ".png" if post_id % 2 else ".jpg"
        image.convert("RGB").resize((850, 1100)).save(imgs / f"{post_id}{extension}")
        (imgs / f"{post_id}.txt").write_text(" ".join(tags))


def danbooru_posts(imgs: Path, count: int, seed: int = 0) -> list[Path]:
    """Posts 1..count as Danbooru-sized JPEGs with their .txt and .json, in `imgs`; return the
    JPEGs. A post whose .txt exists is kept (it is written last), so a re-run draws nothing."""
    imgs.mkdir(parents=True, exist_ok=True)
    missing = [post_id for post_id in range(1, count + 1) if not (imgs / f"{post_id}.txt").exists()]
    if missing:
        # Drawing and encoding 3 megapixels takes a third of a second: all cores, once.
        with multiprocessing.get_context("spawn").Pool() as pool:
            pool.starmap(_write_danbooru_post, [(imgs, seed, post_id) for post_id in missing])
    return [imgs / f"{post_id}.jpg" for post_id in range(1, count + 1)]


def _write_danbooru_post(imgs: Path, seed: int, post_id: int) -> None:
    image, tags, rating = synthetic.draw_post(seed, post_id)
    width, height = DANBOORU_SIZE
    size = (width, height) if image.height >= image.width else (height, width)
    pixels = np.asarray(image.convert("RGB").resize(size), dtype=np.float32)
    grain = np.random.default_rng([seed, post_id]).normal(0, GRAIN_SIGMA, pixels.shape[:2])
    grainy = Image.fromarray(np.clip(pixels + grain[..., None], 0, 255).astype(np.uint8))
    for quality in JPEG_QUALITIES:
        buffer = io.BytesIO()
        grainy.save(buffer, "JPEG", quality=quality)
        if buffer.tell() <= MAX_JPEG_BYTES:
            break
    meta = {"id": post_id, "rating": rating, "tag_string": " ".join(tags), "file_ext": "jpg"}
    atomic_write_bytes(imgs / f"{post_id}.jpg", buffer.getvalue())
    atomic_write_json(imgs / f"{post_id}.json", meta)
    atomic_write_text(imgs / f"{post_id}.txt", " ".join(tags) + "\n")
