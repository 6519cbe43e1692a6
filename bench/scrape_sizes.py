"""Bytes per post for each `--variant`, from the 20 real API posts under tests/fixtures/danbooru/.

The API reports only the original's size (`file_size`), so that mean is exact. The smaller
variants are estimates: each post's variant pixel count (aspect kept, never enlarged: `sample`
850 px wide when the post `has_large`, else the original file itself; `720x720` and `360x360`
fitted in their box) times the bytes per pixel of the fixtures' JPEG originals, at that figure's
25th, 50th and 75th percentile to show its spread. Smaller JPEGs usually spend more bytes per
pixel than large ones, so read the estimates as orders of size. Markdown on stdout.

    python -m bench.scrape_sizes > bench/measured/scrape-sizes.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from bench.common import markdown_header

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "danbooru"
ANSWERS = ("posts_2023.json", "posts_2020.json")
SAMPLE_WIDTH = 850  # Danbooru's large_file_url
BOXES = {"720x720": 720, "360x360": 360}


def variant_pixels(post: dict, variant: str) -> float:
    width, height = post["image_width"], post["image_height"]
    if variant == "sample":
        scale = SAMPLE_WIDTH / width if post.get("has_large") else 1.0
    else:
        scale = min(1.0, BOXES[variant] / width, BOXES[variant] / height)
    return width * height * scale * scale


def estimated_bytes(post: dict, variant: str, bytes_per_pixel: float) -> float:
    if variant == "sample" and not post.get("has_large"):
        return post["file_size"]  # no sample: large_file_url is the original
    return variant_pixels(post, variant) * bytes_per_pixel


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    posts = [post for name in ANSWERS for post in json.loads((FIXTURES / name).read_text())]
    jpeg_density = [
        post["file_size"] / (post["image_width"] * post["image_height"])
        for post in posts
        if post["file_ext"] == "jpg"
    ]
    quartiles = statistics.quantiles(jpeg_density, n=4)
    print(markdown_header("Bytes per post by --variant, from the API fixtures"))
    print(f"- posts: {len(posts)} ({', '.join(ANSWERS)}); JPEG originals: {len(jpeg_density)}")
    print(
        "- bytes per pixel of the JPEG originals, 25th / 50th / 75th percentile: "
        + " / ".join(f"{value:.3f}" for value in quartiles)
    )
    print()
    print("| variant | mean kB per post | how |")
    print("|---|---|---|")
    original = statistics.mean(post["file_size"] for post in posts) / 1000
    print(f"| original | {original:.0f} | exact: mean of `file_size` |")
    for variant in ("sample", *BOXES):
        means = [
            statistics.mean(estimated_bytes(post, variant, density) for post in posts) / 1000
            for density in quartiles
        ]
        print(
            f"| {variant} | {means[1]:.0f} ({means[0]:.0f} to {means[2]:.0f}) | estimate: "
            "pixels x bytes per pixel at the median (25th to 75th percentile) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
