"""The baselines `--eval` scores beside the model, on the same posts, so a user sees what the
model adds:

- the frequency prior: every image gets each tag's share of the training posts (a constant
  score per tag, whose AP is that tag's positive rate once ties are scored correctly);
- "approach 3" of the seed project: a logistic regression per tag on frozen, average-pooled
  VGG16 block5 features (ImageNet weights), fitted on at most `--baseline-max` training posts.
  A tag with a single class among those posts gets its frequency there as a constant score.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import keras
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from alti2v.errors import PipelineError
from alti2v.weights import with_vgg16_weights

MAX_ITERATIONS = 1000  # of each logistic regression's solver (lbfgs)


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


@dataclass(frozen=True)
class TagRegressions:
    """One logistic regression per tag on standardised features; constants where one class."""

    scaler: StandardScaler
    coefficients: np.ndarray  # (features, tags); zero for constant tags
    intercepts: np.ndarray  # (tags,) logits
    constant: np.ndarray  # (tags,) bool: scored by their frequency, not a regression
    frequency: np.ndarray  # (tags,) share of positives among the fitting posts

    def predict(self, features: np.ndarray) -> np.ndarray:
        logits = self.scaler.transform(features) @ self.coefficients + self.intercepts
        probabilities = 1 / (1 + np.exp(-logits))
        return np.where(self.constant, self.frequency, probabilities).astype(np.float32)


def fit_regressions(features: np.ndarray, targets: np.ndarray) -> TagRegressions:
    """Fit approach 3 on (posts, features) and their (posts, tags) boolean targets."""
    scaler = StandardScaler().fit(features)
    standardised = scaler.transform(features)
    num_tags = targets.shape[1]
    frequency = targets.mean(axis=0)
    constant = (frequency == 0) | (frequency == 1)
    coefficients = np.zeros((features.shape[1], num_tags), dtype=np.float64)
    intercepts = np.zeros(num_tags)
    with warnings.catch_warnings():
        # A tag separable on a few posts never converges exactly; its ranking is still right.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for tag in np.flatnonzero(~constant):
            regression = LogisticRegression(max_iter=MAX_ITERATIONS)
            regression.fit(standardised, targets[:, tag])
            coefficients[:, tag] = regression.coef_[0]
            intercepts[tag] = regression.intercept_[0]
    return TagRegressions(scaler, coefficients, intercepts, constant, frequency)
