"""The tag-only install (requirements-tag.txt) against the full one: the size on disk of a fresh
venv made from it (`du`) beside the main .venv's, and the speed of tagging the same images with
`alt_i2v.py --pred --model <WD folder>` in it, against `--pred` with the Keras model in the main
venv (--precision float32); the WD folder in the main venv too, which tells the install's part
from onnxruntime's.

Every command runs whole, as a user runs it, on two numbers of images: the wall time of each
command, images/s over the whole command, and images/s without the start-up (imports, loading
the model), which is the extra images over the extra seconds. One pass per image (--tta none),
batch 16, decoding threads as --pred's defaults. The images are ../shared/real-images/ when
present, else drawn posts (synthetic), copied to reach each number. The model is the newest of
`make demo` (data/demo/models) when there is one, else one built here with random weights
(bench.export.make_model: speed does not depend on them); --export writes its WD folder.

    python -m bench.tag_install            # markdown on stdout, kept under bench/measured/
    python -m bench.tag_install --quick    # fewer images and one pass, nothing kept
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPOSITORY, markdown_header, write_measured

REAL_IMAGES = REPOSITORY.parent / "shared" / "real-images"
DEMO_MODELS = REPOSITORY / "data" / "demo" / "models"
MAIN_VENV = Path(sys.prefix)  # this benchmark runs in the main venv
DRAWN_POSTS = 8  # drawn posts to copy from when there are no real images


def make_venv(folder: Path) -> float:
    """A fresh venv at `folder` holding requirements-tag.txt at constraints.txt's versions, as
    `make tag-venv` makes it; the seconds it took (pip's cache as it is)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    subprocess.run(
        [folder / "bin" / "python", "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", "-r", "requirements-tag.txt", "-c", "constraints.txt"],
        check=True, cwd=REPOSITORY,
    )  # fmt: skip
    return time.perf_counter() - started


def disk_usage(folder: Path) -> int:
    """Bytes `folder` takes on disk, as `du` counts them."""
    output = subprocess.run(["du", "-sk", str(folder)], capture_output=True, text=True, check=True)
    return int(output.stdout.split()[0]) * 1024


def installed(python: Path) -> int:
    """How many distributions the venv of `python` holds (pip and setuptools included)."""
    listing = subprocess.run(
        [python, "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return len(json.loads(listing.stdout))


def keras_model(scratch: Path) -> tuple[Path, str]:
    """`make demo`'s newest model, else one of 64 tags with random weights; and its line."""
    from alti2v.model.saved import find_model

    if any(DEMO_MODELS.glob("[!.]*/model.keras")):
        folder = find_model(None, DEMO_MODELS)
        return folder, f"make demo's newest model, {folder.relative_to(REPOSITORY)}"
    from bench.export import make_model

    return make_model(scratch / "models", 64), "built here: 64 tags, random weights"


def source_images(scratch: Path) -> tuple[list[Path], str]:
    """The images to tag (copied to reach each number), and their line."""
    from alti2v.data.posts import IMAGE_EXTENSIONS, iter_posts

    if REAL_IMAGES.is_dir():
        real = sorted(path for path in REAL_IMAGES.rglob("*")
                      if path.suffix.lower() in IMAGE_EXTENSIONS)  # fmt: skip
        if real:
            return real, f"{len(real)} real illustrations of ../shared/real-images/"
    import synthetic

    synthetic.generate(scratch / "drawn", DRAWN_POSTS, seed=0)
    drawn = [post.image for post in iter_posts(scratch / "drawn")]
    return drawn, f"{len(drawn)} drawn posts (synthetic)"


def image_folder(sources: list[Path], count: int, folder: Path) -> Path:
    """`folder` holding `count` images, the sources copied in turn."""
    folder.mkdir(parents=True)
    for number in range(count):
        source = sources[number % len(sources)]
        shutil.copy(source, folder / f"{number:05d}{source.suffix}")
    return folder


def timed_pred(python: Path, images: Path, model: Path, scratch: Path, extra: tuple,
               count: int) -> float:  # fmt: skip
    """Wall seconds of one `alt_i2v.py --pred` run over `images`, which must tag all `count`."""
    command = [python, "alt_i2v.py", "--pred", images, "--model", model, "--format", "json",
               "--tta", "none", "--quiet", "--data-dir", scratch, *extra]  # fmt: skip
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPOSITORY,
                          env=environment)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode or len(done.stdout.splitlines()) != count:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{' '.join(map(str, command))}: exit {done.returncode}")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 and 8 images, one pass")
    parser.add_argument("--counts", type=int, nargs=2, default=(16, 64), metavar=("FEW", "MANY"))
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command (median)")
    args = parser.parse_args(argv)
    counts, repeats = ((4, 8), 1) if args.quick else (tuple(args.counts), args.repeats)

    with tempfile.TemporaryDirectory(prefix="tag-install-") as scratch_name:
        scratch = Path(scratch_name)
        tag_venv = scratch / "venv-tag"
        print(f"making {tag_venv} from requirements-tag.txt ...", file=sys.stderr)
        install_seconds = make_venv(tag_venv)
        venvs = {
            "tag-only (requirements-tag.txt), fresh": (tag_venv, f"{install_seconds:.0f} s"),
            "main (.venv, requirements.txt)": (MAIN_VENV, "not measured"),
        }
        sizes = {name: disk_usage(venv) for name, (venv, _) in venvs.items()}
        packages = {name: installed(venv / "bin" / "python") for name, (venv, _) in venvs.items()}

        model, model_line = keras_model(scratch)
        wd = scratch / "wd"
        subprocess.run([sys.executable, "alt_i2v.py", "--export", wd, "--model", model,
                        "--data-dir", scratch, "--quiet"], check=True, cwd=REPOSITORY)  # fmt: skip
        sources, images_line = source_images(scratch)
        folders = {count: image_folder(sources, count, scratch / f"images-{count}")
                   for count in counts}  # fmt: skip
        paths = {
            "tag-only venv: --model WD folder (onnxruntime)": (tag_venv / "bin" / "python", wd, ()),
            "main venv: --model WD folder (onnxruntime)": (Path(sys.executable), wd, ()),
            "main venv: --model Keras model, --precision float32": (
                Path(sys.executable), model, ("--precision", "float32"),
            ),
        }  # fmt: skip
        seconds: dict[str, dict[int, list[float]]] = {
            name: {count: [] for count in counts} for name in paths
        }
        for _ in range(repeats):  # interleaved, so that a change of load falls on every path
            for name, (python, tagger, extra) in paths.items():
                for count in counts:
                    print(f"{name}: {count} images", file=sys.stderr)
                    seconds[name][count].append(
                        timed_pred(python, folders[count], tagger, scratch, extra, count)
                    )

    few, many = counts
    size_rows = [
        f"| {name} | {packages[name]} | {sizes[name] / 2**20:.0f} MiB | {install} |"
        for name, (_, install) in venvs.items()
    ]
    speed_rows = []
    for name, by_count in seconds.items():
        wall = {count: statistics.median(values) for count, values in by_count.items()}
        steady = (many - few) / (wall[many] - wall[few]) if wall[many] > wall[few] else float("nan")
        speed_rows.append(
            f"| {name} | {wall[few]:.1f} s | {wall[many]:.1f} s | {many / wall[many]:.2f} | "
            f"{steady:.2f} |"
        )
    raw = {"sizes_bytes": sizes, "install_seconds": round(install_seconds, 1), "seconds": seconds}
    text = (
        markdown_header("The tag-only install: its size, and --pred's speed against the full one")
        + f"- model: {model_line}\n- images: {images_line}, copied to {few} and {many}\n"
        f"- each command: median of {repeats} runs, --tta none, --format json\n\n"
        "| venv | distributions | size on disk (du) | install |\n|---|---|---|---|\n"
        + "\n".join(size_rows)
        + f"\n\n| --pred | {few} images, wall | {many} images, wall | img/s, whole command "
        f"({many}) | img/s without start-up ({many} - {few}) |\n|---|---|---|---|---|\n"
        + "\n".join(speed_rows)
        + "\n\n```\n"
        + json.dumps(raw)
        + "\n```\n"
    )
    print(text)
    if not args.quick:
        write_measured(text, "tag-install")


if __name__ == "__main__":
    main()
