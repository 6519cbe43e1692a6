"""--head-init linear-probe: the network starts scoring exactly as its probe does."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from alti2v.data.images import to_model_input
from alti2v.data.records import open_db, pack_record, record_key
from alti2v.model.network import build_model, head_layers
from alti2v.train.batches import PostBatches
from alti2v.train.probe import HeadProbe, apply_head_probe, fit_head_probe

SIDE = 64  # VGG16 gives a 2x2 map: four positions, each with its own slice of the last Dense
TAGS = 3


def test_the_started_network_scores_as_the_probe(tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(24, SIDE, SIDE, 3), dtype=np.uint8)
    # Tag 0 on bright images, tag 1 on every third, tag 2 on none (a constant: no regression).
    labels = [[0] * int(image.mean() > 127.5) + [1] * int(index % 3 == 0)
              for index, image in enumerate(pixels)]  # fmt: skip
    db = open_db(tmp_path / "db", create=True)
    keys = [record_key("train", str(index)) for index in range(len(pixels))]
    for key, image, tags in zip(keys, pixels, labels, strict=True):
        db.put(key, pack_record(image, tags))
    model = build_model(TAGS, SIDE, weights=None)
    batches = PostBatches(db, keys, 8, TAGS, "vgg")
    probe = fit_head_probe(model, batches)
    apply_head_probe(model, probe)
    db.close()

    images = to_model_input(pixels, "vgg")
    norm, _, _ = head_layers(model)
    output = keras.Model(model.input, norm.input).predict(images, verbose=0).astype(np.float64)
    spread = np.sqrt(probe.variance + norm.epsilon)
    standardised = ((output - probe.mean) / spread).mean(axis=(1, 2))
    expected = 1 / (1 + np.exp(-(standardised @ probe.weights + probe.bias)))
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-4)
    # The constant tag starts at its frequency (never on these posts: the clipped 1e-4).
    np.testing.assert_allclose(model.predict(images, verbose=0)[:, 2], 1e-4, rtol=1e-3)
    # The fitted tags are ranked as the labels say on the posts they were fitted on.
    scores = model.predict(images, verbose=0)
    for tag in (0, 1):
        positive = [tag in row for row in labels]
        assert scores[positive, tag].min() > scores[np.logical_not(positive), tag].max()


def test_a_head_too_narrow_to_pass_the_channels_is_refused() -> None:
    model = build_model(TAGS, SIDE, weights=None)
    _, hidden, _ = head_layers(model)
    channels = hidden.units  # each channel needs two units, one per sign
    probe = HeadProbe(np.zeros(channels), np.ones(channels), np.zeros((channels, TAGS)),
                      np.zeros(TAGS))  # fmt: skip
    with pytest.raises(ValueError, match="cannot pass"):
        apply_head_probe(model, probe)
