"""A logistic regression per tag on fixed features: approach 3 of the seed project, which
`--eval` scores as a baseline and `--head-init linear-probe` starts the new head from.

A tag with a single class among the fitting posts gets its frequency there as a constant score.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

MAX_ITERATIONS = 1000  # of each logistic regression's solver (lbfgs)


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
