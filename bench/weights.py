"""The VGG16 weights the benchmarks train from: the offline copy beside the repository when it is
there (`../shared/weights/`), else Keras' one-time download, whose failure offline ends in
--train's one-line message."""

from __future__ import annotations

from pathlib import Path

SHARED_WEIGHTS = (
    Path(__file__).resolve().parents[2] / "shared/weights/vgg16_imagenet_notop.weights.h5"
)
DEFAULT_WEIGHTS = str(SHARED_WEIGHTS) if SHARED_WEIGHTS.exists() else "imagenet"
