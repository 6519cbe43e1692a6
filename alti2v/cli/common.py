"""What both command lines share: number types, the help formatter, which flags serve which
modes, logging, progress bars, and the one-line errors with their exit codes.

    flags = FlagModes()
    group = flags.group(parser, "--build", modes=("build",))
    group.add_argument("--workers", type=non_negative_int, default=0, help="decoding processes")
    ...
    args = parser.parse_args(argv)
    flags.refuse_unused(parser, given_flags(build_parser, argv), lambda mode: getattr(args, mode))
    return report_errors(lambda: run(args, progress_bars(args.quiet)), ERRORS)

Nothing here imports TensorFlow, Keras or the stages: `--help` and bad flags answer at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from alti2v.errors import EXIT_FAILED, EXIT_INTERRUPTED, PipelineError
from alti2v.progress import SILENT, Progress


def _number(convert: Callable[[str], float], accepts: Callable[[float], bool], rule: str):
    """An argparse type: `convert` the text, refuse what `accepts` rejects (nan included)."""

    def parse(text: str) -> float:
        value = convert(text)
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    parse.__name__ = convert.__name__  # argparse names it in "invalid int value: 'x'"
    return parse


positive_int = _number(int, lambda value: value >= 1, "1 or more")
non_negative_int = _number(int, lambda value: value >= 0, "0 or more")
positive_float = _number(float, lambda value: value > 0, "above 0")
non_negative_float = _number(float, lambda value: value >= 0, "0 or more")
probability = _number(float, lambda value: 0 <= value <= 1, "in [0, 1]")
fraction = _number(float, lambda value: 0 <= value < 1, "in [0, 1)")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every real default once: not for switches, empty lists and None (whose help says
    what happens), nor where the help already states it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        default, text = action.default, action.help or ""
        if default is None or default is False or default == [] or "(default" in text:
            return text  # 0 and 0.0 are real defaults
        return super()._get_help_string(action)


class FlagGroup:
    """An argument group whose flags all serve `modes` (unless a flag names its own)."""

    def __init__(self, group: argparse._ActionsContainer, modes: tuple[str, ...], flags: FlagModes):
        self.group, self.modes, self.flags = group, modes, flags

    def add_argument(self, *names: str, modes: Iterable[str] | None = None,
                     refusal: str | None = None, **options) -> argparse.Action:  # fmt: skip
        """Declare a flag and the modes it serves (the group's by default); `refusal` replaces
        the message given when it comes without any of them."""
        action = self.group.add_argument(*names, **options)
        serves = tuple(modes) if modes is not None else self.modes
        if serves:
            self.flags.modes[action.dest] = serves
            self.flags.flag_names[action.dest] = action.option_strings[0]
        if refusal:
            self.flags.refusals[action.dest] = refusal
        return action


class FlagModes:
    """For each mode-specific flag (by destination), the modes it serves, declared with it."""

    def __init__(self) -> None:
        self.modes: dict[str, tuple[str, ...]] = {}
        self.flag_names: dict[str, str] = {}  # destination -> the flag's first spelling
        self.refusals: dict[str, str] = {}  # destination -> its own message

    def group(self, parser: argparse.ArgumentParser, title: str | None,
              modes: tuple[str, ...] = ()) -> FlagGroup:  # fmt: skip
        """A group in --help under `title` (None: the parser's own options) whose flags serve
        `modes` (none: every mode)."""
        container = parser if title is None else parser.add_argument_group(title)
        return FlagGroup(container, modes, self)

    def refuse_unused(
        self,
        parser: argparse.ArgumentParser,
        given: frozenset[str],
        running: Callable[[str], object],
        refusal: Callable[[str, tuple[str, ...]], str] | None = None,
    ) -> None:
        """`parser.error` for the first flag given without any mode it serves running."""
        for name, modes in self.modes.items():
            if name in given and not any(running(mode) for mode in modes):
                flag = self.flag_names[name]
                parser.error(self.refusals.get(name) or (refusal or only_for)(flag, modes))


def only_for(flag: str, modes: tuple[str, ...]) -> str:
    wanted = " or ".join(f"--{mode}" for mode in modes)
    fix = wanted if len(modes) == 1 else "one of them"
    return f"{flag}: only for {wanted}; add {fix} or leave it out"


def given_flags(
    build_parser: Callable[[], argparse.ArgumentParser], argv: list[str] | None
) -> frozenset[str]:
    """The destinations the command line set, not defaulted: parsed again with every default
    suppressed, only what it set remains."""
    explicit = build_parser()
    for action in explicit._actions:
        action.default = argparse.SUPPRESS
    return frozenset(vars(explicit.parse_args(argv)))


def configure_logging(quiet: bool, format: str = "%(message)s") -> None:
    """Logs to stderr: info and up, warnings and up under --quiet."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format=format, stream=sys.stderr
    )


def progress_bars(quiet: bool, **options) -> Progress:
    """What a stage draws its progress with: tqdm on stderr, or nothing under --quiet."""
    if quiet:
        return SILENT
    from functools import partial

    from tqdm import tqdm

    return partial(tqdm, file=sys.stderr, **options)


@dataclass(frozen=True)
class ErrorMessages:
    """How a script ends on an expected failure: its prefix, what to add after an OSError,
    and its line after Ctrl-C."""

    prefix: str
    interrupted: str
    os_hint: str = ""


def report_errors(run: Callable[[], int], messages: ErrorMessages) -> int:
    """`run()`'s exit status; an expected failure ends in one line on stderr and its code."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        # Warnings logged while a progress bar is drawn go above it, not into it.
        with logging_redirect_tqdm():
            return run()
    except PipelineError as error:
        print_error(f"{messages.prefix}{error}")
        return EXIT_FAILED
    except OSError as error:  # an unwritable data directory, a full disk
        print_error(f"{messages.prefix}{error}{messages.os_hint}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        print_error(messages.interrupted)
        return EXIT_INTERRUPTED


def log_device() -> None:
    """Name the device the model runs on (imports Keras: call it from a stage's run)."""
    from alti2v.model.device import describe_device

    logging.getLogger(__name__).info("%s", describe_device())


def print_error(line: str) -> None:
    print(line, file=sys.stderr)


def write(text: str) -> None:
    """Results on stdout as they come, flushed so that a pipe sees each at once."""
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()


def counts(by_reason: dict[str, int]) -> str:
    """`{"unreadable": 2, "corrupt": 1}` as "1 corrupt, 2 unreadable"."""
    return ", ".join(f"{count} {why}" for why, count in sorted(by_reason.items()))
