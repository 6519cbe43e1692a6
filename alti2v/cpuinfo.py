"""What Linux says of the CPU in /proc/cpuinfo, read in one place for the package (the device
line, --precision auto) and for bench/ (every figure's machine header). Standard library only:
bench.compute_limits times a cold --pred's imports in a process that imports this."""

from __future__ import annotations


def cpuinfo_field(name: str) -> str:
    """The first value of `name` in /proc/cpuinfo ("model name", "flags"); "" where Linux has
    no such file or field."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""
