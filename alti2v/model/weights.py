"""VGG16's weights as `--weights` names them: imagenet (Keras' one-time download), none, or a
VGG16 no-top `.weights.h5` path. `--train` and `--eval`'s baseline both load them here, so a
failure reads the same everywhere: one line with its real cause and the way out.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import keras

from alti2v.errors import PipelineError, one_line


def with_vgg16_weights(
    build: Callable[[str | None], keras.Model],
    weights: str,
    error: type[PipelineError] = PipelineError,
) -> keras.Model:
    """`build(weights)` (None for `none`); a failure raises `error` naming its cause."""
    if weights == "none":
        return build(None)
    check_weights(weights, error)
    try:
        # Keras announces downloads on stdout, which belongs to results.
        with contextlib.redirect_stdout(sys.stderr):
            return build(weights)
    except Exception as failure:  # h5py and Keras raise OSError, ValueError, KeyError, Exception
        cause = one_line(failure)
        if _is_failed_download(failure):
            raise error(
                f"cannot download VGG16's ImageNet weights ({cause}); check the connection, "
                "or give --weights PATH to a VGG16 no-top .weights.h5 file, or --weights none"
            ) from None
        where = " (Keras keeps them in ~/.keras/models/)" if weights == "imagenet" else ""
        raise error(
            f"--weights {weights}{where}: cannot load ({cause}); give a VGG16 no-top "
            ".weights.h5 file (delete a damaged download to fetch it again), or --weights none"
        ) from None


def check_weights(weights: str, error: type[PipelineError] = PipelineError) -> None:
    """Refuse a --weights path that is not a file (before any work that needs it)."""
    if weights not in ("imagenet", "none") and not Path(weights).is_file():
        raise error(f"--weights {weights}: no such file; give imagenet, none or a path")


def weights_sha256(weights: str) -> str | None:
    """The sha256 of a --weights file, which model.json records beside its path (None for
    imagenet and none, which name no file)."""
    if weights in ("imagenet", "none"):
        return None
    with Path(weights).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _is_failed_download(failure: Exception) -> bool:
    # keras.utils.get_file turns HTTP and URL errors into a bare Exception with this text.
    download_message = type(failure) is Exception and str(failure).startswith("URL fetch failure")
    return download_message or isinstance(failure, (ConnectionError, TimeoutError))
