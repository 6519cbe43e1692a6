"""Large JPEG files for the benchmarks: synthetic illustrations upscaled to Danbooru's sizes."""

from __future__ import annotations

from pathlib import Path

from alti2v import synthetic


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
