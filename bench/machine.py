"""Where and when a benchmark ran: the header every raw result under `bench/measured/` starts with.

    print(machine.header("Rate limiter"))   # title, date, command, CPU model and flags, load

Timings on a shared machine mean little without the CPU, its flags (AVX2 or AVX-512 change
TensorFlow's speed several-fold) and the load average while they were taken.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpu_field(name: str) -> str:
    """The first `name : value` of /proc/cpuinfo, or what the platform module knows."""
    try:
        lines = CPUINFO.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:  # not Linux
        return platform.processor() or "unknown"
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return "unknown"


def header(title: str) -> str:
    """Markdown lines naming the run: title, UTC date, command, machine, load average."""
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    command = shlex.join([Path(sys.executable).name, *sys.orig_argv[1:]])
    return "\n".join(
        [
            f"# {title}",
            "",
            f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC",
            f"- command: `{command}`",
            f"- CPU: {cpu_field('model name')}, {os.cpu_count()} logical cores; "
            f"load average (1, 5, 15 min) at the start: {load}",
            f"- CPU flags: {cpu_field('flags')}",
            f"- Python {platform.python_version()} on {platform.system()} {platform.release()}",
            "",
        ]
    )
