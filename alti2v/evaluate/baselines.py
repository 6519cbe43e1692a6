"""The baselines `--eval` scores beside the model, on the same posts, so a user sees what the
model adds:

- the frequency prior: every image gets each tag's share of the training posts (a constant
  score per tag, whose AP is that tag's positive rate once ties are scored correctly);
- "approach 3" of the seed project: a logistic regression per tag on frozen, average-pooled
  VGG16 block5 features, fitted on at most `--baseline-max` training posts. The features come
  from the weights `approach3_weights` names: --weights, else those the model started from.
  A tag with a single class among those posts gets its frequency there as a constant score.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from alti2v import defaults
from alti2v.data.layout import ModelFiles
from alti2v.errors import PipelineError
from alti2v.model.saved import LoadedModel
from alti2v.model.weights import check_weights, weights_sha256, with_vgg16_weights


class BaselineError(PipelineError):
    pass


@dataclass(frozen=True)
class Approach3Weights:
    weights: str  # imagenet, none or a VGG16 no-top .weights.h5 path, as --weights takes them
    sha256: str | None = None  # the file's, as the model that started from it recorded it
    recorded_by: str | None = None  # the model.json that named them (None: --weights, default)


def approach3_weights(given: str | None, models: list[LoadedModel]) -> Approach3Weights:
    """--weights when given; else the weights the first model from --train started from
    (its model.json records them); else the default."""
    if given is not None:
        return Approach3Weights(given)
    for model in models:
        if model.info.get("layout") != "wd" and "weights" in model.info:
            return Approach3Weights(
                model.info["weights"], model.info.get("weights_sha256"),
                str(ModelFiles(model.folder).info),
            )  # fmt: skip
    return Approach3Weights(defaults.WEIGHTS)


def feature_extractor(image_size: int, weights: str | Approach3Weights) -> keras.Model:
    """VGG16 without its top, average-pooled over block5: (images, 512) features.
    `weights` is imagenet, none or a VGG16 no-top .weights.h5 path, as at --train; a recorded
    file must still be the one recorded. Raises BaselineError when they cannot be had."""
    chosen = weights if isinstance(weights, Approach3Weights) else Approach3Weights(weights)
    try:
        if chosen.sha256 is not None:
            check_weights(chosen.weights, BaselineError)
            if weights_sha256(chosen.weights) != chosen.sha256:
                raise BaselineError(
                    f"--weights {chosen.weights}: not the file the model started from (another "
                    "sha256); give --weights PATH to that file, imagenet or none"
                )

        def build(loaded: str | None) -> keras.Model:
            return keras.applications.VGG16(
                include_top=False,
                weights=loaded,
                input_shape=(image_size, image_size, 3),
                pooling="avg",
            )

        return with_vgg16_weights(build, chosen.weights, BaselineError)
    except BaselineError as error:
        if chosen.recorded_by is None:
            raise
        raise BaselineError(f"{error} (the weights {chosen.recorded_by} records)") from None
