"""The layers stay layered: mnm_core names nothing of mnm_ros (not even in a string), no module imports
itself back through others (lazy imports included), and each layer's commands reach `mnm` through the
`mnm.commands` entry points."""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mnm_core", "mnm_ros")


def _modules() -> dict[str, ast.Module]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = ast.parse(path.read_text(), filename=str(path))
    return modules


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes (module, class, function) of a tree."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _imports(name: str, tree: ast.Module, modules: dict[str, ast.Module]) -> set[str]:
    """The project modules `name` imports anywhere in its code (inside functions too)."""
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                        for a in node.names}
    return {t for t in targets if t in modules and t != name}


def test_mnm_core_names_nothing_of_mnm_ros():
    for name, tree in _modules().items():
        if not name.startswith("mnm_core"):
            continue
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("mnm_ros") for a in node.names), name
            elif isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("mnm_ros"), name
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert "mnm_ros" not in node.value, f"{name} names mnm_ros in {node.value!r}"


def test_no_import_circle():
    modules = _modules()
    graph = {name: _imports(name, tree, modules) for name, tree in modules.items()}
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            assert state.get(target) != "open", "import circle: " + " → ".join([*path[path.index(target):], target])
            if target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_each_layer_registers_its_own_commands():
    """mnm_core builds its own commands in (so `python -m mnm_core.cli` works uninstalled); the layers
    above register theirs as entry points."""
    from mnm_core.cli import ENTRY_POINT_GROUP, build_parser
    from mnm_core.commands import COMMANDS

    layers = {point.value.split(".")[0]: point.load()
              for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    layers["mnm_core"] = COMMANDS
    assert set(layers) == set(PACKAGES)
    for package, commands in layers.items():
        assert all(module.__name__.startswith(f"{package}.commands.") for module in commands)
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"eval", "bag-eval", "export"} <= set(subparsers.choices) and {"demo", "bag-play"} <= set(
        subparsers.choices)
