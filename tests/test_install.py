"""The install: which Pythons make accepts (tools/check_python.py), and constraints.txt, the
versions CI passed with, covering requirements.txt (installed in this venv) and the tag-only
requirements-tag.txt, a part of it without TensorFlow or Keras (`make tag-venv`)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def load_check_python():
    spec = importlib.util.spec_from_file_location("check_python", ROOT / "tools/check_python.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def pins() -> list[tuple[str, str, Marker | None]]:
    """(name, version, marker) of every pin in constraints.txt."""
    found = []
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)(?:\s*;\s*(.+))?$", line.strip())
        if match:
            name, version, marker = match.groups()
            marker = Marker(marker) if marker else None
            found.append((canonicalize_name(name.split("[")[0]), version, marker))
    return found


def test_supported_pythons_pass_and_the_rest_get_one_line_saying_what_to_do() -> None:
    check = load_check_python()
    for version in ((3, 11), (3, 12), (3, 13)):
        assert check.refusal(version, has_ensurepip=True) is None
    too_new = check.refusal((3, 14), has_ensurepip=True)
    assert "Python 3.14 is not supported (TensorFlow has no wheel for it yet)" in too_new
    assert "make PYTHON=python3.13" in too_new and "\n" not in too_new
    assert "not supported;" in check.refusal((3, 10), has_ensurepip=True)
    no_venv = check.refusal((3, 12), has_ensurepip=False)
    assert "apt install python3.12-venv" in no_venv and "\n" not in no_venv
    assert check.refusal(sys.version_info[:2], has_ensurepip=True) is None  # this one


def test_every_requirement_is_pinned_in_constraints_txt() -> None:
    # A package added to requirements.txt without `make lock` would install unpinned.
    pinned = {name for name, _, _ in pins()}
    for file in ("requirements.txt", "requirements-tag.txt"):
        for requirement in requirements(ROOT / file):
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{file}: {requirement.name} is not in constraints.txt"


def test_the_tag_only_requirements_are_a_part_of_the_full_ones_without_a_framework() -> None:
    # `make lock` compiles requirements.txt alone, so the tag-only pins come from there; the pins
    # must also satisfy requirements-tag.txt's own bounds.
    full = {canonicalize_name(r.name) for r in requirements(ROOT / "requirements.txt")}
    tag_only = requirements(ROOT / "requirements-tag.txt")
    names = {canonicalize_name(requirement.name) for requirement in tag_only}
    assert names <= full
    assert {"onnxruntime", "numpy", "pillow", "tqdm"} <= names
    assert not names & {"keras", "tensorflow", "tensorflow-cpu", "jax", "torch", "onnx"}
    versions = {name: version for name, version, marker in pins()
                if marker is None or marker.evaluate()}  # fmt: skip
    for requirement in tag_only:
        name = canonicalize_name(requirement.name)
        assert requirement.specifier.contains(versions[name], prereleases=True), requirement


def test_pins_satisfy_requirements_txt_and_this_venv_holds_them() -> None:
    wanted = {canonicalize_name(r.name): r for r in requirements(ROOT / "requirements.txt")}
    for name, version, marker in pins():
        if marker is not None and not marker.evaluate():
            continue  # another platform's or Python's pin
        if name in wanted:
            assert wanted[name].specifier.contains(version, prereleases=True), (name, version)
        installed = importlib.metadata.version(name)
        assert installed == version, f"{name} {installed}: make installs from constraints.txt"
