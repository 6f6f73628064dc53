"""The package's layering (ARCHITECTURE.md): imports go down the layers, never up, never round.

Read from the source with ``ast``, imports inside functions included: a cycle hidden in a
function body is still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "conformance"
# Lowest first; a module may import its own layer and the ones below. Keep in step with
# ARCHITECTURE.md. "mock" and "report" stand beside the stack: each may use only the contract
# (the mock) or nothing (the report) of the rest, so either can be read and tested alone.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"conformance", "settings", "contract", "series_model", "timeline"}),
    ("http", {"exchange", "client", "ledger"}),
    ("judging", {"checks", "judge", "fuzz_checks", "state", "capture_checks"}),
    ("driving", {"factory", "scenario", "fuzzing", "series_machine", "preflight", "results", "matrix", "traffic"}),
    ("pytest", {"entry_point", "plugin", "fixtures", "heap", "terminal", "cli", "tests"}),
]
BESIDE = {"mock": {"contract", "mock"}, "report": {"report"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "conformance":
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "conformance")
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        # "from conformance.mock import faults" names the submodule, not the package's __init__.
        targets = {t for t in _imports(path) if t in modules}
        graph[name] = {t for t in targets if not any(o.startswith(t + ".") for o in targets)} - {name}
    return graph


def _unit(module: str) -> str:
    """The layering unit of a module: its first part below the package ("mock", "scenario", …)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "conformance"


def _layer(unit: str) -> int:
    return next(i for i, (_, units) in enumerate(LAYERS) if unit in units)


def test_layers__every_module_has_a_place() -> None:
    placed = set(BESIDE).union(*(units for _, units in LAYERS))
    assert {_unit(m) for m in _graph()} <= placed, "add the new module to LAYERS here and to ARCHITECTURE.md"


def test_layers__imports_go_down_only() -> None:
    wrong = []
    for module, targets in _graph().items():
        unit = _unit(module)
        for target in targets:
            other = _unit(target)
            if unit in BESIDE:
                ok = other in BESIDE[unit]
            elif other in BESIDE:
                # The pytest layer starts the mock; the driving layer hands results to the report.
                starts_mock = other == "mock" and unit in ("plugin", "entry_point")
                ok = starts_mock or (other == "report" and _layer(unit) >= 3)
            else:
                ok = _layer(other) <= _layer(unit)
            if not ok:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_layers__no_import_cycles() -> None:
    graph = _graph()
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)
