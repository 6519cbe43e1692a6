"""Which backend and device run the model.

`describe_device()` is the start-up line of --train and --pred: "keras backend jax on 1 gpu
(NVIDIA H100 80GB HBM3)". Asking a backend for its devices is backend-specific by nature; it is
done here only, by name from a small table, so the rest of the code stays backend-neutral.
"""

from __future__ import annotations

import importlib
import os
import platform
import shutil
from pathlib import Path

import keras

from alti2v.cpuinfo import cpuinfo_field


def _jax_devices() -> list[tuple[str, str]]:
    return [
        (device.platform, device.device_kind) for device in importlib.import_module("jax").devices()
    ]


def _tensorflow_devices() -> list[tuple[str, str]]:
    config = importlib.import_module("tensorflow").config
    gpus = config.list_physical_devices("GPU")
    if not gpus:
        return [("cpu", "")]
    return [
        ("gpu", config.experimental.get_device_details(gpu).get("device_name", "")) for gpu in gpus
    ]


def _torch_devices() -> list[tuple[str, str]]:
    cuda = importlib.import_module("torch").cuda
    if not cuda.is_available():
        return [("cpu", "")]
    return [("gpu", cuda.get_device_name(index)) for index in range(cuda.device_count())]


DEVICE_LISTERS = {"jax": _jax_devices, "tensorflow": _tensorflow_devices, "torch": _torch_devices}


def describe_device(precision: str | None = None) -> str:
    """One line: the Keras backend, how many devices of which kind, their name, and the
    `precision` (its reason included) or else the dtype policy."""
    backend = keras.backend.backend()
    devices = DEVICE_LISTERS.get(backend, lambda: [("cpu", "")])()
    kind, name = devices[0]
    if kind == "cpu":
        name = f"{_cpu_model()}, {os.cpu_count()} cores"
    computes = (
        f"precision {precision}"
        if precision
        else f"dtype policy {keras.config.dtype_policy().name}"
    )
    unused = f"; {_why_gpu_unused(backend)}" if kind == "cpu" and _nvidia_gpu_present() else ""
    return f"keras backend {backend} on {len(devices)} {kind} ({name}){unused}, {computes}"


def accelerator_present() -> bool:
    """Whether the model runs on a GPU (or another accelerator) rather than the CPU."""
    kind, _ = DEVICE_LISTERS.get(keras.backend.backend(), lambda: [("cpu", "")])()[0]
    return kind != "cpu"


def _why_gpu_unused(backend: str) -> str:
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return "a GPU is present but CUDA_VISIBLE_DEVICES hides it"
    return (
        f"a GPU is present but this {backend} has no CUDA support "
        "(make gpu-venv: KERAS_BACKEND=jax with jax[cuda12] uses it)"
    )


def _nvidia_gpu_present() -> bool:
    gpus = Path("/proc/driver/nvidia/gpus")
    return (gpus.is_dir() and any(gpus.iterdir())) or shutil.which("nvidia-smi") is not None


def _cpu_model() -> str:
    return cpuinfo_field("model name") or platform.processor() or platform.machine()
