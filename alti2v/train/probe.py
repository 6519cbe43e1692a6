"""--head-init linear-probe: the new head starts as approach 3's linear probe (LP-FT).

A randomly initialised head sends random gradients into the unfrozen VGG16 blocks while it
learns; fitting a linear probe on the pretrained features first and fine-tuning from it keeps
them (Kumar et al., 2022, "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution"). The probe is approach 3's logistic regressions (`alti2v/model/linear.py`),
fitted on the VGG16 output as the head sees it: standardised per channel, as BatchNormalization
does, and averaged over the map's positions. The network stays the seed's; only its starting
weights change:

- BatchNormalization's moving mean and variance: the channels' over the fitting posts;
- Dense(2048): unit c passes channel c through (relu(x)) and unit C + c its negative (relu(-x)),
  so x = u[c] - u[C + c]; the other units keep their random start;
- the last Dense: at every position, the probe's weight / positions on each pass-through pair
  (with opposite signs) and 0 on the other units; its bias, the probe's intercept.

At step 0 the network scores exactly as the probe does.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from alti2v.model.linear import fit_regressions
from alti2v.model.network import head_layers, log_odds
from alti2v.progress import SILENT, Progress
from alti2v.train.batches import PostBatches


@dataclass(frozen=True)
class HeadProbe:
    mean: np.ndarray  # (channels,) of the VGG16 output over posts and positions
    variance: np.ndarray  # (channels,)
    weights: np.ndarray  # (channels, tags) on the standardised, position-averaged output
    bias: np.ndarray  # (tags,) logits


def fit_head_probe(
    model: keras.Model, batches: PostBatches, progress: Progress = SILENT
) -> HeadProbe:
    """Fit the probe on `batches` (unaugmented training posts) through `model`'s VGG16."""
    norm, _, _ = head_layers(model)
    vgg_output = keras.Model(model.input, norm.input)
    outputs, targets = [], []
    for index in progress(range(len(batches)), desc="linear probe", unit="batch"):
        images, batch_targets = batches[index]
        outputs.append(vgg_output.predict_on_batch(images))
        targets.append(batch_targets)
    output = np.concatenate(outputs).astype(np.float64)
    mean = output.mean(axis=(0, 1, 2))
    variance = output.var(axis=(0, 1, 2))
    standardised = ((output - mean) / np.sqrt(variance + norm.epsilon)).mean(axis=(1, 2))
    regressions = fit_regressions(standardised, np.concatenate(targets) > 0.5)
    # The regressions standardise their input again; fold that scaler into weights and bias.
    scale = regressions.scaler.scale_
    weights = regressions.coefficients / scale[:, None]
    bias = regressions.intercepts - (regressions.scaler.mean_ / scale) @ regressions.coefficients
    # A tag with one class among the posts has no regression: its frequency's log-odds.
    bias = np.where(regressions.constant, log_odds(regressions.frequency), bias)
    return HeadProbe(mean, variance, weights, bias)


def apply_head_probe(model: keras.Model, probe: HeadProbe) -> None:
    norm, hidden, last = head_layers(model)
    channels, tags = probe.weights.shape
    units = hidden.units
    if 2 * channels > units:
        raise ValueError(f"Dense({units}) cannot pass {channels} channels through both signs")
    positions = last.kernel.shape[0] // units
    norm.moving_mean.assign(probe.mean.astype("float32"))
    norm.moving_variance.assign(probe.variance.astype("float32"))
    kernel = keras.ops.convert_to_numpy(hidden.kernel).copy()
    kernel[:, :channels] = np.eye(channels)
    kernel[:, channels : 2 * channels] = -np.eye(channels)
    hidden.kernel.assign(kernel)
    hidden.bias.assign(np.zeros(units, dtype="float32"))
    # Flatten lays the (rows, columns, units) map out position by position.
    per_position = np.zeros((units, tags), dtype="float32")
    per_position[:channels] = probe.weights / positions
    per_position[channels : 2 * channels] = -probe.weights / positions
    last.kernel.assign(np.tile(per_position, (positions, 1)))
    last.bias.assign(probe.bias.astype("float32"))
