"""The package's layer order (docs/architecture.md, "Layers") holds: a room imports only rooms below it; and no
test module imports another.

Every import of every module counts, at the top of a file or inside a function (a lazy import is still a
dependency), except those of the in-container code (`grading/reporter/`, `traces/tracer/`: the standard
library only, copied into containers). Rooms on one layer do not import each other. An import against the
order is allowed only when it is listed in KNOWN_BREAKS with the reason it is there; a listed break that no
longer occurs fails too, so the list shrinks as the code moves. Pure: reads the source, imports nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .helpers import ROOT

PACKAGE = ROOT / "swe_env"

# Bottom to top. A room is a subpackage or a top-level module of swe_env; rooms on one line are independent.
LAYERS: list[set[str]] = [
    {"errors", "chat"},
    {"data", "endings"},
    {"runtime"},
    {"build"},
    {"grading"},
    {"traces", "importers"},
    {"tools"},
    {"synth", "config", "spaces", "exports"},
    {"env", "client"},
    {"agents"},
    {"run", "integrations", "server"},
    {"cli"},
]
IN_CONTAINER = ("swe_env/grading/reporter/", "swe_env/traces/tracer/")

# (importing module, imported module) → why the import runs against the order. Remove a line when its import goes.
KNOWN_BREAKS: dict[tuple[str, str], str] = {}


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "swe_env" else None


def _layer(room: str) -> int | None:
    return next((index for index, rooms in enumerate(LAYERS) if room in rooms), None)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(absolute module imported, line) for every import of swe_env's own modules in `path`."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "swe_env":  # `from .. import tools`: the names are the subpackages
                found += [(f"swe_env.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((target, node.lineno))
    return [(target, line) for target, line in found if target.startswith("swe_env")]


def _breaks() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        if relative.startswith(IN_CONTAINER):
            continue
        importer = _module_name(path)
        source = _room(importer)
        if source is None:
            continue  # the package root: a lazy facade (PEP 562) over every room, on top of them all
        for target, line in _imports(path):
            room = _room(target)
            if room is None or room == "__version__" or room == source:
                continue  # the root's version constant is everyone's
            target_layer, source_layer = _layer(room), _layer(source)
            if target_layer is None or source_layer is None:
                continue  # a room without a layer: test_every_room_has_a_layer names it
            if target_layer >= source_layer:
                found.setdefault((importer, target), []).append(f"{relative}:{line}")
    return found


def test_every_room_has_a_layer():
    rooms = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py") or (path / "__init__.py").exists()
    }
    placed = set().union(*LAYERS)
    assert rooms == placed, f"rooms without a layer: {sorted(rooms - placed)}; layers naming no room: {sorted(placed - rooms)}"


def test_imports_follow_the_layers():
    found = _breaks()
    new = {pair: where for pair, where in found.items() if pair not in KNOWN_BREAKS}
    assert not new, 'imports against the layer order (docs/architecture.md, "Layers"):\n' + "\n".join(
        f"{', '.join(where)}: {importer} imports {target}" for (importer, target), where in sorted(new.items())
    )


def test_every_known_break_still_occurs():
    gone = sorted(set(KNOWN_BREAKS) - set(_breaks()))
    assert not gone, f"these imports are gone: remove them from KNOWN_BREAKS: {gone}"


def test_no_test_module_imports_another():
    """Shared helpers live in tests/helpers.py (fixtures in conftest.py): a test module imports neither another
    test module nor conftest, so each can move, split or go without breaking the others."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [alias.name for alias in node.names if alias.name.startswith("tests.")] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("tests")):
                names = [node.module] if node.module and node.module != "tests" else [alias.name for alias in node.names]
            for name in names:
                if name.rpartition(".")[2].startswith("test_") or name.rpartition(".")[2] == "conftest":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {name}")
    assert not found, "\n".join(found)


def test_the_architecture_page_shows_these_layers():
    """docs/architecture.md's "Layers" table is this test's LAYERS, so the page and the rule cannot drift apart."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    shown = [{room.strip().strip("`") for room in row.split("|")[2].split(",")} for row in rows]
    assert shown == LAYERS, f"docs/architecture.md shows {shown}"
