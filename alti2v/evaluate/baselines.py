"""The baselines `--eval` scores beside the model, on the same posts, so a user sees what the
model adds:

- the frequency prior: every image gets each tag's share of the training posts (a constant
  score per tag, whose AP is that tag's positive rate once ties are scored correctly);
- "approach 3" of the seed project: a logistic regression per tag on frozen, average-pooled
  VGG16 block5 features (ImageNet weights), fitted on at most `--baseline-max` training posts.
  A tag with a single class among those posts gets its frequency there as a constant score.
"""

from __future__ import annotations

import keras

from alti2v.errors import PipelineError
from alti2v.model.weights import with_vgg16_weights


class BaselineError(PipelineError):
    pass


def feature_extractor(image_size: int, weights: str) -> keras.Model:
    """VGG16 without its top, average-pooled over block5: (images, 512) features.
    `weights` is imagenet, none or a VGG16 no-top .weights.h5 path, as at --train."""

    def build(loaded: str | None) -> keras.Model:
        return keras.applications.VGG16(
            include_top=False,
            weights=loaded,
            input_shape=(image_size, image_size, 3),
            pooling="avg",
        )

    return with_vgg16_weights(build, weights, BaselineError)
