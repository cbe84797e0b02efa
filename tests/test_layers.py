"""The package's import graph, read from every module's import statements (those inside
functions included): no cycle, and no module imports a module of a higher layer. The layers,
bottom first, are the README's architecture map."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "plasticity_bench"

# Layer of each module, by its longest matching prefix (names relative to the package).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("", "roles", "devices", "interrupts", "results", "metric_names", "registry", "provenance", "status",
              "training_log", "optim")),
    ("environments", ("environments",)),
    ("networks", ("networks",)),
    ("measurement", ("replay", "metrics")),
    ("agents", ("agents",)),
    ("methods", ("methods",)),
    ("specs", ("spec", "budget", "matrix")),
    ("training", ("training",)),
    ("analysis", ("analysis",)),
    ("interface", ("cli", "cli_pipeline", "__main__")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``path`` imports (``from plasticity_bench.x import y`` counts as
    x.y where that is a module, else x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "plasticity_bench" or node.module.startswith("plasticity_bench."):
                base = node.module.removeprefix("plasticity_bench").removeprefix(".")
                for alias in node.names:
                    full = f"{base}.{alias.name}".lstrip(".")
                    found.add(full if full in modules else base)
        elif isinstance(node, ast.Import):
            found |= {alias.name.removeprefix("plasticity_bench").removeprefix(".") for alias in node.names
                      if alias.name.split(".")[0] == "plasticity_bench"}
    return {name for name in found if name in modules and name != module_name(path)}


def layer_of(module: str) -> int:
    best, best_length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix and module.startswith(prefix + "."))
            if matches and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    assert best is not None, f"module {module!r} is in no layer: add it to LAYERS and the README's map"
    return best


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imports(path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def test_no_module_imports_a_higher_layer():
    upward = [f"{module} ({LAYERS[layer_of(module)][0]}) imports {other} ({LAYERS[layer_of(other)][0]})"
              for module, imported in sorted(import_graph().items()) for other in sorted(imported)
              if layer_of(other) > layer_of(module)]
    assert upward == []


def test_the_checks_see_a_cycle_and_an_upward_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert layer_of("agents.sac") > layer_of("roles") and layer_of("training.stack") > layer_of("methods.redo")
    assert "training.run" in import_graph()["training.stack"]  # imports are read, lazy ones included


def test_the_architecture_map_lists_every_module():
    """docs/architecture.md (the README's map) names every module: its file name, or for a
    method, an intervention's name."""
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    def listed(name: str, path: Path) -> bool:
        last = name.rsplit(".", 1)[-1]
        if path.name == "__init__.py":
            return f"{last}/" in text
        return (last if name.startswith("methods.") else f"{last}.py") in text

    missing = [name for name, path in sorted(package_modules().items()) if name and not listed(name, path)]
    assert missing == []
