"""The base of every expected failure: the CLI prints its message as one line, no traceback."""


class PipelineError(Exception):
    """A failure the user can fix; the message says which file and what to do."""
