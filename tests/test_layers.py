"""The dependency rule of the design (docs/ARCHITECTURE.md): imports point down the layers
only, and the modules' imports form no circle."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "crowdquant"

CORE = {"scoring", "data", "payouts", "money"}
INFRASTRUCTURE = {"db", "storage", "ledger", "mail", "compute", "clock", "settings", "faults"}
SERVICES = {"tournament", "fund", "simulate"}
BELOW_SERVICES = CORE | INFRASTRUCTURE

MAY_IMPORT: dict[str, set[str]] = {
    # the composition root
    "cli": {"server"} | SERVICES | BELOW_SERVICES,
    "server": {"api", "web", "http"} | SERVICES | BELOW_SERVICES,
    # the interfaces: siblings that never import each other, over what they share
    "api": {"http"} | SERVICES | BELOW_SERVICES,
    "web": {"http"} | SERVICES | BELOW_SERVICES,
    "http": SERVICES | BELOW_SERVICES,
    # the services, one way: the simulator drives the tournament, which drives the fund
    "simulate": {"tournament", "fund"} | BELOW_SERVICES,
    "tournament": {"fund"} | BELOW_SERVICES,
    "fund": BELOW_SERVICES,
    # the infrastructure: the ledger keeps its books in the database, never the reverse
    "ledger": {"db", "money", "clock", "settings", "faults"},
    "db": {"money"},
    "storage": {"settings"},
    "mail": {"settings"},
    "compute": {"settings"},
    "clock": set(),
    "faults": set(),
    "settings": set(),
    # the core: pure functions
    "data": {"scoring", "money"},
    "payouts": {"money"},
    "scoring": set(),
    "money": set(),
}


def _packages() -> set[str]:
    return {path.stem for path in PACKAGE.iterdir() if path.suffix == ".py" or path.is_dir()} - {
        "__init__",
        "__pycache__",
        "py",  # py.typed
    }


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The crowdquant modules (or names in them) `path` imports when it runs: imports under
    ``if TYPE_CHECKING:`` are left out, ``from crowdquant import x`` counts as ``crowdquant.x``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.update(f"{child.module}.{alias.name}" for alias in child.names)
            elif isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    return {name for name in found if name.startswith("crowdquant.")}


def _package_of(name: str) -> str:
    return name.split(".")[1]


def test_every_package_has_its_place_in_the_layers() -> None:
    assert _packages() == set(MAY_IMPORT)


def test_the_layers_have_no_circle() -> None:
    try:
        TopologicalSorter(MAY_IMPORT).prepare()
    except CycleError as exc:
        pytest.fail(f"the layers run in a circle: {exc.args[1]}")


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_imports_point_down_the_layers(package: str) -> None:
    allowed = MAY_IMPORT[package] | {package}
    root = PACKAGE / package
    paths = [root.with_suffix(".py")] if root.with_suffix(".py").exists() else root.rglob("*.py")
    wrong = sorted(
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in paths
        for name in _imports(path)
        if _package_of(name) not in allowed
    )
    assert wrong == []


def test_modules_import_each_other_in_no_circle() -> None:
    """Outside type-checking imports; a package's own submodules may import from it."""
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        imported = {name if name in paths else name.rpartition(".")[0] for name in _imports(path)}
        graph[module] = {
            name
            for name in imported
            if name in paths and name != module and not module.startswith(f"{name}.")
        }
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        pytest.fail(f"modules import each other in a circle: {' -> '.join(exc.args[1])}")
