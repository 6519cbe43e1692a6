"""Expected failures and the exit codes of both scripts.

Every expected failure is a PipelineError subclass; the CLI prints its message as one line, no
traceback, and exits with EXIT_FAILED.
"""

# The exit codes of alt_i2v.py and danbooru_datasetgenerator.py, shown in each --help.
EXIT_OK = 0  # success
EXIT_SOME_INPUTS_FAILED = 1  # the run finished, but some inputs failed (each was reported)
EXIT_USAGE = 2  # bad flags (argparse's own code)
EXIT_FAILED = 3  # an expected failure stopped the run (the message says what to do)
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C (128 + SIGINT, the shell's convention)

EXIT_CODES_HELP = (
    "exit status: 0 success; 1 finished, but some inputs failed (each was reported); "
    "2 bad flags; 3 an error stopped the run (the message says what to do); "
    "130 stopped by Ctrl-C (run the same command again to continue)"
)

# The end of the line a tag-only install (requirements-tag.txt) gives where a mode or a model needs
# more than it has.
FULL_INSTALL = (
    "requirements-tag.txt runs WD-layout folders only; install requirements.txt: "
    "pip install -r requirements.txt -c constraints.txt"
)


class PipelineError(Exception):
    """A failure the user can fix; the message says which file and what to do."""


def one_line(error: BaseException) -> str:
    """`error`'s message on one line (Keras and h5py messages can span many), at most 300
    characters: enough to show the cause, short enough to stay one line of an error."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
