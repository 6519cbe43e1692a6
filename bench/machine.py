"""What a measurement ran on, written beside every raw output under bench/measured/.

Timings on a shared machine are only comparable within one run; this records enough (date, CPU
model and flags, cores, load average, the environment that changes kernels) to judge them.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
import time
from pathlib import Path

MEASURED = Path(__file__).resolve().parent / "measured"  # committed raw outputs
# Environment variables that change which kernels run, so they belong with every timing.
KERNEL_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "KERAS_BACKEND", "XLA_FLAGS", "TF_ENABLE_ONEDNN_OPTS")


def cpuinfo_field(name: str) -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def describe_machine() -> dict:
    flags = cpuinfo_field("flags").split()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": cpuinfo_field("model name") or platform.processor(),
        "cpu_flags_simd": [flag for flag in flags if flag.startswith(("avx", "amx", "fma"))],
        "cores_usable": len(os.sched_getaffinity(0)),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "environment": {name: os.environ[name] for name in KERNEL_VARIABLES if name in os.environ},
    }


def markdown_header(title: str, command: str | None = None) -> str:
    """Markdown lines naming the run: title, command (default: this process's), machine."""
    command = command or shlex.join([Path(sys.executable).name, *sys.orig_argv[1:]])
    machine = describe_machine()
    return (
        f"# {title}\n\n`{command}`\n\n"
        + "".join(f"- {name}: {value}\n" for name, value in machine.items())
        + "\n"
    )


def write_measured(text: str, name: str, suffix: str = ".md", folder: Path = MEASURED) -> Path:
    """Keep a run's raw output as `<folder>/<name>-<date>-<time><suffix>`; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{time.strftime('%Y%m%d-%H%M')}{suffix}"
    path.write_text(text)
    return path
