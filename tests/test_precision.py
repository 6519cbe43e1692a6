"""--precision: what auto chooses and why; bfloat16 computes in bfloat16 and keeps weights, the
sigmoid and so the loss in float32; a model moves between precisions with its weights and its
optimizer's state, and is saved in float32 whichever precision trained it."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from alti2v.model.network import OUTPUT_LAYERS, build_model
from alti2v.model.precision import (
    AMX_FLAG,
    AVX512_BF16_FLAG,
    MIN_MATMUL_GAIN,
    at_precision,
    choose_precision,
    cpu_flags,
    matmul_gain,
    precision_of,
    remembered_gain,
    use_precision,
)
from alti2v.model.saved import export_model, load_model


@pytest.fixture
def float32_afterwards():
    yield
    use_precision("float32")


def never_measured() -> float:
    raise AssertionError("the flags alone decide here")


@pytest.mark.parametrize(
    ("flags", "gain", "chosen", "reason"),
    [
        ({AMX_FLAG, AVX512_BF16_FLAG}, never_measured, "bfloat16", "CPU has amx_bf16"),
        ({"avx2"}, never_measured, "float32", "the CPU has neither amx_bf16 nor avx512_bf16"),
        ({AVX512_BF16_FLAG}, lambda: 1.85, "bfloat16", "a bfloat16 matmul measured 1.85x"),
        ({AVX512_BF16_FLAG}, lambda: 1.1, "float32", "a bfloat16 matmul measured 1.10x"),
    ],
)
def test_auto_chooses_bfloat16_only_where_the_cpu_has_fast_units(flags, gain, chosen, reason):
    precision = choose_precision("auto", frozenset(flags), gain)
    assert precision.name == chosen
    assert reason in precision.reason
    assert str(precision) == f"{chosen} ({precision.reason})"


def test_a_named_precision_is_taken_as_asked() -> None:
    for name in ("float32", "bfloat16"):
        assert choose_precision(name, frozenset({AMX_FLAG}), never_measured).name == name


def test_the_gain_is_measured_once_then_read_back(tmp_path) -> None:
    cache = tmp_path / "alt-i2v" / "precision.json"
    measured = []

    def measure() -> float:
        measured.append(1.7)
        return 1.7

    assert remembered_gain(measure, cache) == 1.7
    assert remembered_gain(never_measured, cache) == 1.7  # the same answer, not measured again
    assert measured == [1.7]
    # Another machine's or another Keras' measurement, or a broken file, is measured again.
    for kept in ({**json.loads(cache.read_text()), "key": {"cpu": "other"}}, "{not json"):
        cache.write_text(kept if isinstance(kept, str) else json.dumps(kept))
        assert remembered_gain(lambda: 1.1, cache) == 1.1
        assert json.loads(cache.read_text())["gain"] == 1.1


def test_auto_reads_the_gain_kept_under_xdg_cache_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert remembered_gain(lambda: 0.9) == 0.9
    assert (tmp_path / "alt-i2v" / "precision.json").is_file()
    chosen = choose_precision("auto", frozenset({AVX512_BF16_FLAG}))
    assert (chosen.name, chosen.reason.endswith("measured 0.90x float32")) == ("float32", True)


def test_an_unwritable_cache_still_gives_the_measurement(tmp_path) -> None:
    blocked = tmp_path / "a file"
    blocked.write_text("")
    assert remembered_gain(lambda: 2.5, blocked / "precision.json") == 2.5


def test_auto_on_this_machine_follows_its_flags_and_measured_gain() -> None:
    flags = cpu_flags()
    assert "fpu" in flags or not flags  # read from /proc/cpuinfo where Linux has one
    gain = matmul_gain(size=256, repeats=2)
    assert gain > 0
    chosen = choose_precision("auto", gain=lambda: gain).name
    if AMX_FLAG in flags:
        assert chosen == "bfloat16"
    elif AVX512_BF16_FLAG in flags:
        assert chosen == ("bfloat16" if gain >= MIN_MATMUL_GAIN else "float32")
    else:
        assert chosen == "float32"


def test_a_bfloat16_model_keeps_weights_and_output_in_float32(float32_afterwards) -> None:
    use_precision("bfloat16")
    model = build_model(8, image_size=64, weights=None)
    assert precision_of(model) == "bfloat16"
    assert model.layers[1].compute_dtype == "bfloat16"
    assert all(weight.dtype == "float32" for weight in model.weights)
    # The last Dense, the linear and the sigmoid: float32 logits and a float32 loss.
    assert [layer.compute_dtype for layer in model.layers[-OUTPUT_LAYERS - 1 :]] == [
        "bfloat16", "float32", "float32", "float32"
    ]  # fmt: skip
    images = np.zeros((2, 64, 64, 3), dtype=np.float32)
    assert model.predict_on_batch(images).dtype == np.float32


def test_a_model_moved_to_bfloat16_predicts_like_the_float32_model() -> None:
    keras.utils.set_random_seed(0)
    model = build_model(8, image_size=64, weights=None)
    assert at_precision(model, "float32") is model
    copy = at_precision(model, "bfloat16")
    # The last Dense and its two activations stay float32, every layer before them moves.
    assert [layer.compute_dtype for layer in copy.layers[1:]] == ["bfloat16"] * (
        len(copy.layers) - 1 - OUTPUT_LAYERS
    ) + ["float32"] * OUTPUT_LAYERS
    assert isinstance(copy.layers[-OUTPUT_LAYERS], keras.layers.Dense)
    assert [layer.trainable for layer in copy.layers[1:]] == [
        layer.trainable for layer in model.layers[1:]
    ]  # the frozen blocks stay frozen
    for mine, theirs in zip(copy.weights, model.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), theirs.numpy())
    images = np.random.default_rng(0).uniform(-120, 140, (2, 64, 64, 3)).astype(np.float32)
    expected = model.predict_on_batch(images)
    actual = copy.predict_on_batch(images)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, atol=0.02)
    assert not np.array_equal(actual, expected)  # it did compute in bfloat16


def test_a_resumed_model_changes_precision_with_its_optimizer_state() -> None:
    keras.utils.set_random_seed(0)
    model = build_model(4, image_size=32, weights=None)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    targets = (rng.uniform(size=(4, 4)) > 0.5).astype(np.float32)
    model.train_on_batch(images, targets)
    copy = at_precision(model, "bfloat16")
    assert int(copy.optimizer.iterations) == int(model.optimizer.iterations) == 1
    for mine, theirs in zip(copy.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), theirs.numpy())
    copy.train_on_batch(images, targets)  # trains on from there
    assert int(copy.optimizer.iterations) == 2


def test_an_exported_model_computes_in_float32_and_loads_in_either(tmp_path) -> None:
    keras.utils.set_random_seed(0)
    model = at_precision(build_model(4, image_size=32, weights=None), "bfloat16")
    folder = export_model(tmp_path, model, ["a", "b", "c", "d"], {})
    assert precision_of(load_model(folder).model) == "float32"
    assert precision_of(load_model(folder, "bfloat16").model) == "bfloat16"
