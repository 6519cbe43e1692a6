"""Before make builds .venv: is this Python one alt-i2v installs on, and can it make a venv?

    python3 tools/check_python.py      exits 0, or 1 with one line saying what to do

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import importlib.util
import sys

# TensorFlow 2.21 has wheels for 3.10 to 3.13, JAX 0.10 needs 3.11 (constraints.txt).
OLDEST, NEWEST = (3, 11), (3, 13)


def refusal(version: tuple[int, int], has_ensurepip: bool) -> str | None:
    """Why `make` cannot build the venv with this Python, or None when it can."""
    supported = f"{OLDEST[0]}.{OLDEST[1]} to {NEWEST[0]}.{NEWEST[1]}"
    if not OLDEST <= version <= NEWEST:
        newer = " (TensorFlow has no wheel for it yet)" if version > NEWEST else ""
        return (
            f"make: Python {version[0]}.{version[1]} is not supported{newer}; alt-i2v runs on "
            f"{supported}: install one and run `make PYTHON=python{NEWEST[0]}.{NEWEST[1]}`"
        )
    if not has_ensurepip:
        return (
            f"make: this Python {version[0]}.{version[1]} cannot create a venv (no ensurepip); "
            f"install it (Debian, Ubuntu: sudo apt install python{version[0]}.{version[1]}-venv) "
            "and run make again"
        )
    return None


if __name__ == "__main__":
    problem = refusal(sys.version_info[:2], importlib.util.find_spec("ensurepip") is not None)
    sys.exit(problem)  # None exits 0; a message is printed to stderr and exits 1
