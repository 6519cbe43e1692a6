"""What both command lines share: number types, the help formatter, which flags serve which
modes, logging, progress bars, and the one-line errors with their exit codes.

    flags = FlagModes()
    group = flags.group(parser, "--build", modes=("build",))
    group.add_argument("--build-workers", type=non_negative_int, default=0, brief=True,
                       aliases=("--workers",), help="decoding processes")
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
from pathlib import Path
from typing import TYPE_CHECKING

from alti2v.errors import EXIT_FAILED, EXIT_INTERRUPTED, FULL_INSTALL, PipelineError
from alti2v.progress import SILENT, Progress

if TYPE_CHECKING:
    from alti2v.model.saved import LoadedModel


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


class HelpFormatter(argparse.HelpFormatter):
    """Shows every real default once: not for switches, empty lists and None (whose help says
    what happens), nor where the help already states it; a text default that blank space
    begins or ends (a separator) in quotes, so that it can be seen."""

    def _get_help_string(self, action: argparse.Action) -> str:
        default, text = action.default, action.help or ""
        unstated = default is None or default is False or default == [] or default == ()
        if unstated or default is argparse.SUPPRESS or "(default" in text:
            return text  # 0 and 0.0 are real defaults
        shown = (
            repr(default) if isinstance(default, str) and default.strip() != default else default
        )
        return f"{text} (default: {str(shown).replace('%', '%%')})"

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        """`FILE...` for one or more, not argparse's `FILE [FILE ...]`."""
        if action.nargs == argparse.ONE_OR_MORE:
            return f"{self._metavar_formatter(action, default_metavar)(1)[0]}..."
        return super()._format_args(action, default_metavar)


class FlagGroup:
    """An argument group whose flags all serve `modes` (unless a flag names its own)."""

    def __init__(self, group: argparse._ActionsContainer, modes: tuple[str, ...], flags: FlagModes):
        self.group, self.modes, self.flags = group, modes, flags

    def add_argument(self, *names: str, modes: Iterable[str] | None = None,
                     refusal: str | None = None, brief: bool = False,
                     aliases: tuple[str, ...] = (), **options) -> argparse.Action:  # fmt: skip
        """Declare a flag and the modes it serves (the group's by default); `refusal` replaces
        the message given when it comes without any of them; `brief` shows it in the short
        --help; `aliases` are old spellings, accepted and left out of every help."""
        action = self.group.add_argument(*names, **options)
        serves = tuple(modes) if modes is not None else self.modes
        if serves:
            self.flags.modes[action.dest] = serves
            self.flags.flag_names[action.dest] = action.option_strings[0]
        if refusal:
            self.flags.refusals[action.dest] = refusal
        if brief:
            self.flags.brief.add(action)
        for alias in aliases:
            self.add_alias(alias, action, **options)
        return action

    def add_alias(self, name: str, of: argparse.Action, **options) -> None:
        """`name` as a hidden spelling that sets `of`'s destination (`options` as for
        add_argument: an alias may store a constant where the flag takes a value)."""
        hidden = {"dest": of.dest, "help": argparse.SUPPRESS, "default": argparse.SUPPRESS}
        self.group.add_argument(name, **options | hidden)


class FlagModes:
    """For each mode-specific flag (by destination), the modes it serves, declared with it;
    and the groups and brief flags the two helps are drawn from."""

    def __init__(self) -> None:
        self.modes: dict[str, tuple[str, ...]] = {}
        self.flag_names: dict[str, str] = {}  # destination -> the flag's first spelling
        self.refusals: dict[str, str] = {}  # destination -> its own message
        self.brief: set[argparse.Action] = set()  # the flags the short --help shows
        self.groups: list[tuple[argparse._ActionsContainer, tuple[str, ...]]] = []

    def group(self, parser: argparse.ArgumentParser, title: str, modes: tuple[str, ...] = (),
              description: str | None = None) -> FlagGroup:  # fmt: skip
        """A group in --help under `title` (and `description`) whose flags serve `modes`
        (none: every mode)."""
        container = parser.add_argument_group(title, description)
        self.groups.append((container, modes))
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

    def brief_help(self, parser: argparse.ArgumentParser, footer: str) -> str:
        """The short --help: the description, and each group's brief flags under its title."""
        formatter = _start_help(parser)
        # A mode's groups ("--pred: output", "--pred: inputs") share one section here.
        sections: dict[str, list[argparse.Action]] = {}
        for container, _ in self.groups:
            brief = [action for action in _actions(container) if action in self.brief]
            sections.setdefault(container.title.split(":")[0], []).extend(brief)
        for title, actions in sections.items():
            self._section(formatter, title, actions)
        formatter.add_text(footer)
        formatter.add_text(parser.epilog)
        return formatter.format_help()

    def full_help(self, parser: argparse.ArgumentParser) -> str:
        """--help-all: every group with all its flags; after a mode's last group, the flags it
        shares with groups of other modes, so that each mode's section lists all it takes."""
        formatter = _start_help(parser)
        last_group = {mode: container for container, modes in self.groups for mode in modes}
        for container, _ in self.groups:
            self._section(formatter, container.title, _actions(container))
            for mode in [mode for mode, last in last_group.items() if last is container]:
                title = f"--{mode}: also these, shared with other modes"
                self._section(formatter, title, self._shared(mode))
        formatter.add_text(parser.epilog)
        return formatter.format_help()

    def _shared(self, mode: str) -> list[argparse.Action]:
        """The flags serving `mode` that a group of other modes declares."""
        return [
            action
            for container, modes in self.groups
            if mode not in modes
            for action in _actions(container)
            if mode in self.modes.get(action.dest, ())
        ]

    @staticmethod
    def _section(formatter, title: str, actions: list[argparse.Action]) -> None:
        if actions:
            formatter.start_section(title)
            formatter.add_arguments(actions)
            formatter.end_section()


def _start_help(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    formatter = parser._get_formatter()
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    formatter.add_text(parser.description)
    return formatter


def _actions(container: argparse._ActionsContainer) -> list[argparse.Action]:
    """The group's flags as --help shows them (hidden aliases left out)."""
    return [action for action in container._group_actions if action.help != argparse.SUPPRESS]


class PrintHelp(argparse.Action):
    """A flag that prints `render(parser)` and exits, as argparse's own --help does."""

    def __init__(self, option_strings, dest, render: Callable[[argparse.ArgumentParser], str],
                 help: str) -> None:  # fmt: skip
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, default=argparse.SUPPRESS,
                         help=help)  # fmt: skip
        self.render = render

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser._print_message(self.render(parser), sys.stdout)
        parser.exit()


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
    except ModuleNotFoundError as error:  # a tag-only install asked for a mode it lacks
        missing = error.name or str(error)
        print_error(f"{messages.prefix}{missing} is not installed here; {FULL_INSTALL}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        print_error(messages.interrupted)
        return EXIT_INTERRUPTED


def model_precision(args: argparse.Namespace) -> str:
    """--precision resolved (auto: by the device and the CPU) and set for the models built next,
    and the device line logged: once per run, by the first mode that needs a model. It asks for
    the devices, so --train calls it after --distribute has started the cluster."""
    chosen = getattr(args, "chosen_precision", None)
    if chosen is None:
        from alti2v.model.device import describe_device
        from alti2v.model.precision import choose_precision, use_precision

        chosen = args.chosen_precision = choose_precision(args.precision)
        use_precision(chosen.name)
        logging.getLogger(__name__).info("%s", describe_device(str(chosen)))
    return chosen.name


def load_chosen_model(args: argparse.Namespace, models: Path) -> LoadedModel:
    """The model of --model (else the newest under `models`): one from --train in Keras at
    --precision, a WD-layout folder in onnxruntime, which needs no Keras."""
    from alti2v.model.saved import find_model, load_model, needs_keras

    folder = find_model(args.model, models)
    if needs_keras(folder):
        return load_model(folder, model_precision(args))
    loaded = load_model(folder)
    logging.getLogger(__name__).info("%s", loaded.model.describe())
    return loaded


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
