"""Imports inside alti2v point one way: cli -> stages -> model -> data (STYLE.md item 1).

Every module under alti2v/ is read with `ast`, never imported, and each `import`, `from ...
import` (absolute or relative, at any depth: inside functions and `if TYPE_CHECKING:` too) and
`importlib.import_module("...")` with a literal name is resolved to the room it reaches. A room
is a subpackage of alti2v, or one of the shared top-level modules, or `alti2v` itself (a name
taken from the package). A new room fails here until it has a line in MAY_IMPORT.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "alti2v"

SHARED = frozenset({"alti2v", "defaults", "errors", "interrupt", "progress", "cpuinfo"})
STAGES = frozenset({"scrape", "train", "evaluate", "export", "tag", "vectors"})
UNDER_STAGES = frozenset({"model", "data"}) | SHARED
# Room -> the rooms its modules may import.
MAY_IMPORT = {
    "cli": {"cli"} | STAGES | UNDER_STAGES,
    "scrape": STAGES | UNDER_STAGES,
    "train": (STAGES - {"evaluate"}) | UNDER_STAGES,
    "evaluate": STAGES | UNDER_STAGES,
    "tag": STAGES | UNDER_STAGES,
    "vectors": STAGES | UNDER_STAGES,
    "export": STAGES | UNDER_STAGES,
    "model": {"model", "data"} | SHARED,
    "data": {"data", "defaults", "errors", "progress"},
    **dict.fromkeys(SHARED, SHARED),
}
# Top-level packages of this repository that the product never imports: test and demo data,
# benchmarks, tests.
OUTSIDE = {"synthetic", "bench", "tests"}


def module_name(path: Path) -> str:
    parts = ("alti2v", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(name: str) -> str:
    """The room a dotted alti2v name lies in: `alti2v.data.build` -> data, `alti2v` -> alti2v."""
    parts = name.split(".")
    if len(parts) == 1:
        return "alti2v"
    if (PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").is_file():
        return parts[1]
    return "alti2v"  # `from alti2v import PROJECT_URL`: a name of the package itself


def imported_names(tree: ast.Module, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of everything the module imports, relative imports made absolute."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "alti2v":  # `from alti2v import defaults`: the module alti2v.defaults
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return sorted(found)


def violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        room = room_of(module)
        where = path.relative_to(PACKAGE.parent)
        if room not in MAY_IMPORT:
            problems.append(f"{where}: room {room!r} has no line in MAY_IMPORT")
            continue
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
        lines = source.splitlines()
        for line, name in imported_names(tree, module, path.name == "__init__.py"):
            top = name.split(".")[0]
            if top in OUTSIDE:
                reason = f"alti2v never imports {top}"
            elif top != "alti2v":
                continue  # the standard library and third-party packages
            elif room_of(name) not in MAY_IMPORT[room]:
                reason = f"{room} may not import {room_of(name)}"
            else:
                continue
            statement = lines[line - 1].strip()
            problems.append(f"{where}:{line}: {statement!r} imports {name}: {reason}")
    return problems


def test_imports_point_one_way():
    problems = violations()
    if problems:
        pytest.fail("imports against the direction of the rooms:\n" + "\n".join(problems), False)


def test_the_walk_sees_relative_and_nested_imports():
    source = (
        "from . import loop\n"
        "from .. import defaults\n"
        "from ..model.network import build_model\n"
        "def late():\n"
        "    import alti2v.cli.main\n"
        "    importlib.import_module('alti2v.evaluate.run')\n"
    )
    names = imported_names(ast.parse(source), "alti2v.train.epoch", is_package=False)
    assert names == [
        (1, "alti2v.train"),
        (2, "alti2v.defaults"),
        (3, "alti2v.model.network"),
        (5, "alti2v.cli.main"),
        (6, "alti2v.evaluate.run"),
    ]
    assert [room_of(name) for _, name in names] == ["train", "defaults", "model", "cli", "evaluate"]
