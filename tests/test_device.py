"""The start-up device line, and what the CPU changes in training."""

from __future__ import annotations

import keras

from alti2v.model.device import accelerator_present, describe_device
from alti2v.train.epoch import drop_remainder


def test_device_line_names_backend_device_and_policy() -> None:
    line = describe_device()
    assert line.startswith(f"keras backend {keras.backend.backend()} on 1 cpu (")
    assert line.endswith("dtype policy float32")
    named = describe_device("bfloat16 (CPU has amx_bf16)")
    assert named.endswith(", precision bfloat16 (CPU has amx_bf16)")


def test_the_cpu_is_no_accelerator_so_training_keeps_the_short_last_batch() -> None:
    assert not accelerator_present()


def test_drop_remainder_keeps_whole_batches_of_the_order() -> None:
    order = [bytes([i]) for i in range(10)]
    assert drop_remainder(order, 4) == order[:8]
    assert drop_remainder(order, 5) == order  # already whole
    assert drop_remainder(order[:3], 4) == order[:3]  # less than a batch: nothing to drop
