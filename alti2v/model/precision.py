"""The precision the model computes in (`--precision`): chosen from the device and the CPU's
bfloat16 units, set for models built next, and given to a loaded model with its weights and,
for a resumed run, its optimizer's state.

    chosen = choose_precision("auto")  # Precision("float32", "CPU has no bfloat16 units ...")
    use_precision(chosen.name)         # models built from here on
    model = at_precision(model, chosen.name)

bfloat16 computes in bfloat16 and keeps the weights, the last Dense with its activations and the
loss in float32 (Keras' mixed_bfloat16; the model builder gives those layers a float32 dtype),
so checkpoints and exported models hold float32 weights whichever precision trained them.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import keras

from alti2v.cpuinfo import cpuinfo_field
from alti2v.data.files import atomic_write_json
from alti2v.model.device import accelerator_present
from alti2v.model.network import OUTPUT_LAYERS

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
# AMX does bfloat16 matrix products in hardware: 3.6x float32's matmul rate on a Sapphire
# Rapids Xeon. AVX512-BF16 alone (AMD Zen 4 and 5, Cooper Lake) gains less, so it is measured.
AMX_FLAG, AVX512_BF16_FLAG = "amx_bf16", "avx512_bf16"
# Below this measured matmul gain, bfloat16's casts eat what its products save.
MIN_MATMUL_GAIN = 1.3
GAIN_MATRIX_SIZE = 1024
BFLOAT16_FLAGS = frozenset({AMX_FLAG, AVX512_BF16_FLAG})
GAIN_CACHE = "alt-i2v/precision.json"  # auto's measured gain, per CPU model and software


@dataclass(frozen=True)
class Precision:
    name: str  # "float32" or "bfloat16"
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def choose_precision(asked: str, flags: frozenset[str] | None = None, gain=None) -> Precision:
    """`asked` itself, or for "auto": bfloat16 on a GPU and on a CPU with AMX, or with
    AVX512-BF16 when a bfloat16 matmul measures `MIN_MATMUL_GAIN` times float32's rate;
    float32 otherwise. `flags` (the CPU's) and `gain` (a measurement) default to this machine's,
    the gain as first measured here (`remembered_gain`)."""
    if asked != "auto":
        return Precision(asked, f"--precision {asked}")
    if accelerator_present():
        return Precision("bfloat16", "on a GPU")
    flags = cpu_flags() if flags is None else flags
    if AMX_FLAG in flags:
        return Precision("bfloat16", f"CPU has {AMX_FLAG}")
    if AVX512_BF16_FLAG not in flags:
        return Precision("float32", f"the CPU has neither {AMX_FLAG} nor {AVX512_BF16_FLAG}")
    ratio = (gain or remembered_gain)()
    measured = f"CPU has {AVX512_BF16_FLAG}; a bfloat16 matmul measured {ratio:.2f}x float32"
    return Precision("bfloat16" if ratio >= MIN_MATMUL_GAIN else "float32", measured)


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty where /proc/cpuinfo is missing)."""
    return frozenset(cpuinfo_field("flags").split())


def matmul_gain(size: int = GAIN_MATRIX_SIZE, repeats: int = 5) -> float:
    """How many times faster a size x size matmul runs in bfloat16 than in float32, here and
    now (best of `repeats`, after a warm-up; about a second)."""

    def best_seconds(dtype: str) -> float:
        matrix = keras.ops.ones((size, size), dtype=dtype)
        seconds = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            product = keras.ops.matmul(matrix, matrix)
            keras.ops.convert_to_numpy(keras.ops.cast(product[0, 0], "float32"))  # waits for it
            seconds.append(time.perf_counter() - start)
        return min(seconds[1:])

    return best_seconds("float32") / best_seconds("bfloat16")


def remembered_gain(measure=matmul_gain, cache: Path | None = None) -> float:
    """`matmul_gain` measured once per CPU model and software, then read back from `cache`
    (default: `GAIN_CACHE` under $XDG_CACHE_HOME or ~/.cache). A loaded machine can measure
    either side of `MIN_MATMUL_GAIN`, and the same command would then compute in another
    precision, and print other probabilities, from one run to the next."""
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / GAIN_CACHE
    backend = keras.backend.backend()
    key = {"cpu": cpuinfo_field("model name"), "flags": sorted(cpu_flags() & BFLOAT16_FLAGS),
           "keras": keras.__version__,
           "backend": f"{backend} {importlib.import_module(backend).__version__}"}  # fmt: skip
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
        if known["key"] == key:
            return float(known["gain"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, another machine's or unreadable: measure
    gain = measure()
    with contextlib.suppress(OSError):  # unwritable: it is measured again next time
        atomic_write_json(cache, {"key": key, "gain": gain})
    return gain


def use_precision(name: str) -> None:
    """Models built after this compute in `name` (their weights stay float32)."""
    keras.config.set_dtype_policy(POLICIES[name])


def precision_of(model: keras.Model) -> str:
    """The precision `model`'s layers compute in (its first layer after the input's)."""
    policy = model.layers[1].dtype_policy.name
    return next(name for name, known in POLICIES.items() if known == policy)


def at_precision(model: keras.Model, name: str, keep_optimizer: bool = True) -> keras.Model:
    """`model` computing in `name`: itself when it already does, else a copy with the same
    weights (the last Dense and its activations stay float32) and, if compiled and
    `keep_optimizer`, an optimizer that carries on from the same state."""
    if precision_of(model) == name:
        return model
    policy = POLICIES[name]

    kept = model.layers[-OUTPUT_LAYERS:]

    def recast(layer: keras.layers.Layer) -> keras.layers.Layer:
        dtype = "float32" if any(layer is output for output in kept) else policy
        return layer.__class__.from_config({**layer.get_config(), "dtype": dtype})

    copy = keras.models.clone_model(model, clone_function=recast)
    copy.set_weights(model.get_weights())
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and keep_optimizer:
        carried = optimizer.__class__.from_config(optimizer.get_config())
        carried.build(copy.trainable_variables)
        for mine, theirs in zip(carried.variables, optimizer.variables, strict=True):
            mine.assign(theirs)
        copy.compile(optimizer=carried, loss=model.loss)
    return copy
