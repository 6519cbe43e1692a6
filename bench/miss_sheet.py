"""The misses of a finished bench.quality run on a contact sheet: held-out posts where a tag is true
and ranked low (missed) or false and ranked high (false alarms), each with the tag's score and
rank and the post's true colours.

A miss is a post on the wrong side of the tag's rank cut: with k held-out positives, a positive
ranked below the k-th post, or a negative ranked among the first k (as many of one as of the
other; a tag ranked perfectly has none). For each tag, worst AP first, the sheet shows its worst
missed positive and its worst false alarm (more of each when fewer tags leave room), 24 posts at
most, 160-pixel thumbnails of the square the model sees. Each caption: the tag, whether the post
was missed or a false alarm, its score (the bar) and rank; the post's true hair and eye colours,
each under the colours the model scored highest for it; its id and how many girls it shows.

With --before RUN and --after RUN (runs scored on the same held-out posts) each post is drawn
twice, side by side, in the same order: the posts are --pick's misses (--before's by default),
and a caption is green where that run ranks the post on the right side of the cut, red where it
is a miss. The PNG goes to bench/measured/ beside a Markdown list of the posts it shows (also on
stdout).

    python -m bench.miss_sheet bench/results/grid/bfloat16-seed7
    python -m bench.miss_sheet RUN --tags purple_hair green_hair
    python -m bench.miss_sheet --before bench/results/grid/float32-seed7 --after RUN
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import synthetic
from alti2v.data.layout import DataDir, ModelFiles
from alti2v.data.posts import iter_posts
from alti2v.data.vocabulary import load_vocabulary
from alti2v.errors import PipelineError
from alti2v.model.metrics import average_precision
from alti2v.model.saved import find_model
from alti2v.tag.select import ranked
from alti2v.tag.sheet import SheetCell, SheetLine, render_sheet
from bench.common import markdown_header, write_measured
from bench.quality import HELDOUT_SCORES, labelled_posts, posts_of

MAX_POSTS = 24  # posts on one sheet
THUMB = 160  # pixels per thumbnail side
COLUMNS = 6  # cells per row of the sheet (three pairs with --before and --after)
COLOUR_TAGS = (*synthetic.HAIR_COLOURS, *synthetic.EYE_COLOURS)
GIRLS_TAGS = tuple(tags[0] for tags in synthetic.COUNT_TAGS.values())  # 1girl ... 4girls
KINDS = ("missed", "false alarm")


class MissSheetError(PipelineError):
    pass


@dataclass(frozen=True)
class Run:
    """A finished bench.quality run: its held-out posts, their tags and its scores for them."""

    work: Path
    tags: list[str]  # its vocabulary: the scores' columns
    paths: list[str]  # the held-out images, the scores' rows
    targets: np.ndarray  # (posts, tags) multi-hot
    scores: np.ndarray  # (posts, tags)
    labels: list[frozenset[str]]  # each post's true tags, those outside the vocabulary too

    @classmethod
    def load(cls, work: Path) -> Run:
        """Raises a PipelineError, saying what to do, for a folder that is not a finished run."""
        scores_file = work / HELDOUT_SCORES
        if not scores_file.is_file():
            raise MissSheetError(
                f"{scores_file}: no such file; give a finished bench.quality --work"
            )
        tags = load_vocabulary(ModelFiles(find_model(None, DataDir(work).models)).vocab)
        heldout = posts_of(work) / "heldout"
        paths, targets = labelled_posts(heldout, tags)  # in iter_posts' order, as labels below
        scores = np.load(scores_file)
        if scores.shape != targets.shape:
            raise MissSheetError(
                f"{scores_file}: {scores.shape} scores for {targets.shape} held-out posts and "
                f"tags in {heldout}; run bench.quality again"
            )
        labels = [frozenset(post.labels()) for post in iter_posts(heldout)]
        return cls(work, tags, paths, targets, scores, labels)

    def column(self, tag: str) -> tuple[np.ndarray, np.ndarray]:
        """(scores, targets) of one tag over the held-out posts."""
        index = self.tags.index(tag)
        return self.scores[:, index], self.targets[:, index]

    def ranks(self, tag: str) -> np.ndarray:
        """Each post's rank for `tag`, 1 for the highest score (ties in post order)."""
        scores, _ = self.column(tag)
        ranks = np.empty(len(scores), dtype=np.int64)
        ranks[ranked(scores)] = np.arange(1, len(scores) + 1)
        return ranks

    def is_miss(self, tag: str) -> np.ndarray:
        """Per post, whether it is on the wrong side of the tag's rank cut."""
        _, targets = self.column(tag)
        return (self.ranks(tag) <= targets.sum()) != (targets > 0)


@dataclass(frozen=True)
class Shown:
    """One post on the sheet: which tag it missed, and how."""

    post: int  # its row in the runs' scores
    tag: str
    kind: str  # one of KINDS


def post_id(path: str) -> str:
    return Path(path).stem


def worst_misses(run: Run, tags: list[str], limit: int) -> list[Shown]:
    """Per tag, worst AP first, its worst missed positives and false alarms, as many of each as
    leave room for every tag; at most `limit` posts, each shown once."""
    order = sorted(tags, key=lambda tag: average_precision(*run.column(tag)))
    per_tag = max(1, limit // (len(KINDS) * len(tags)))
    shown: list[Shown] = []
    for tag in order:
        ranks, miss, (_, targets) = run.ranks(tag), run.is_miss(tag), run.column(tag)
        taken = {item.post for item in shown}
        for kind, wrong in zip(KINDS, (miss & (targets > 0), miss & (targets == 0)), strict=True):
            # The missed positives ranked lowest first, the false alarms ranked highest first.
            worst = sorted(np.flatnonzero(wrong), key=lambda post: ranks[post],
                           reverse=kind == "missed")  # fmt: skip
            fresh = [int(post) for post in worst if post not in taken]
            shown += [Shown(post, tag, kind) for post in fresh[:per_tag]]
    return shown[:limit]


def caption_lines(run: Run, post: int) -> list[SheetLine]:
    """A post's true hair and eye colours, each under the colours the run scored highest for it
    (as many as are true, with their scores), then its id and its girls."""
    labels = run.labels[post]
    lines = []
    for part, colours in (("hair", synthetic.HAIR_COLOURS), ("eyes", synthetic.EYE_COLOURS)):
        suffix = f"_{part}"
        true = [tag.removesuffix(suffix) for tag in colours if tag in labels]
        scored = [tag for tag in colours if tag in run.tags]
        scores = np.array([run.scores[post, run.tags.index(tag)] for tag in scored])
        top = ranked(scores, max(1, len(true)))
        guesses = " ".join(f"{scored[index].removesuffix(suffix)} {scores[index]:.2f}"
                           for index in top)  # fmt: skip
        lines += [SheetLine(f"{part}: {' '.join(true) or '-'}"), SheetLine(f"model: {guesses}")]
    about = [tag for tag in (*GIRLS_TAGS, "greyscale") if tag in labels]
    return [*lines, SheetLine(f"post {post_id(run.paths[post])}, {' '.join(about)}")]


def cell(run: Run, item: Shown, label: str) -> SheetCell:
    """The post as `run` scored it: green where it ranks the post on the right side of the cut."""
    scores, _ = run.column(item.tag)
    rank = run.ranks(item.tag)[item.post]
    right = not run.is_miss(item.tag)[item.post]
    path = Path(run.paths[item.post])
    score = SheetLine(f"{item.kind} #{rank}", float(scores[item.post]), bool(right))
    title = f"{item.tag} ({label})" if label else item.tag
    return SheetCell(path, title, [score, *caption_lines(run, item.post)])


def listing(runs: dict[str, Run], shown: list[Shown]) -> str:
    """The Markdown list of the posts on the sheet: each run's score and rank."""
    header = " | ".join(f"{label or 'score'} (rank)" for label in runs)
    lines = [f"| tag | kind | post | {header} |", "|---" * (3 + len(runs)) + "|"]
    for item in shown:
        post = post_id(next(iter(runs.values())).paths[item.post])
        values = " | ".join(
            f"{run.column(item.tag)[0][item.post]:.3f} ({run.ranks(item.tag)[item.post]})"
            for run in runs.values()
        )
        lines.append(f"| {item.tag} | {item.kind} | {post} | {values} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("run", type=Path, nargs="?", help="a finished bench.quality --work")
    parser.add_argument("--before", type=Path, help="with --after: the first of two runs")
    parser.add_argument("--after", type=Path, help="with --before: the second, drawn beside it")
    parser.add_argument("--pick", choices=("before", "after"), default="before",
                        help="with --before and --after: whose misses are shown")  # fmt: skip
    parser.add_argument("--tags", nargs="+", default=list(COLOUR_TAGS), help="the tags")
    parser.add_argument("--name", default="miss-sheet", help="bench/measured/ file name")
    args = parser.parse_args(argv)
    if (args.run is None) == (args.before is None and args.after is None):
        parser.error("give one RUN, or --before RUN and --after RUN")
    if args.run is None and (args.before is None or args.after is None):
        parser.error("--before and --after go together")
    folders = {"": args.run} if args.run else {"before": args.before, "after": args.after}
    try:
        runs = {label: Run.load(folder) for label, folder in folders.items()}
    except PipelineError as error:
        parser.error(str(error))
    # The same posts, wherever each run's image cache is: the same ids with the same tags.
    if len({(tuple(map(post_id, run.paths)), tuple(run.labels)) for run in runs.values()}) > 1:
        parser.error(f"{args.before} and {args.after} scored other held-out posts; give runs "
                     "of the same --seed, --train-count and --heldout-count")  # fmt: skip
    missing = [tag for tag in args.tags if any(tag not in run.tags for run in runs.values())]
    picker = runs[args.pick if args.run is None else ""]
    empty = [tag for tag in args.tags if tag not in missing and not picker.column(tag)[1].any()]
    for tag in missing + empty:
        print(f"miss_sheet: {tag}: not in a run's vocabulary, or no held-out positive; left out",
              file=sys.stderr)  # fmt: skip
    tags = [tag for tag in args.tags if tag not in missing + empty]
    if not tags:
        parser.error("none of --tags is in the runs' vocabulary with a held-out positive")
    shown = worst_misses(picker, tags, MAX_POSTS)
    cells = [cell(run, item, label) for item in shown for label, run in runs.items()]
    runs_named = ", ".join(f"{label or 'run'} {run.work}" for label, run in runs.items())
    text = (
        markdown_header("The misses of a bench.quality run on a contact sheet")
        + f"Runs: {runs_named}. Posts: {'--' + args.pick if args.run is None else 'its'} "
        f"misses, ranked among the {len(picker.paths)} held-out posts; the sheet is the PNG of "
        "this file's name, beside it.\n\n" + listing(runs, shown)
    )
    measured = write_measured(text, args.name)
    picture = render_sheet(cells, measured.with_suffix(".png"), COLUMNS, THUMB)
    print(text)
    print(f"raw output: {measured}; sheet: {picture}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
