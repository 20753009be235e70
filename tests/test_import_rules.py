"""DESIGN.md's import direction, checked on the source: every import of every module, at module level or inside a
function, must go to a layer that the layout table's "may import" column allows; and the modules must not import
each other in a circle, even through function-level imports.

Today's exceptions are listed in :data:`KNOWN` and :data:`KNOWN_CYCLE_EDGES`, each with its reason. A new
violation fails; a fixed one fails too until its entry is deleted, so the lists only shrink.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "autostruct"

#: Module (or package) prefix -> layer; the longest matching prefix wins.
LAYER_OF = {
    "autostruct.errors": "base",
    "autostruct.utils": "base",
    "autostruct.config": "config",
    # The results.json schema: pydantic models like config.py's, shared by the writer (pipeline) and the report.
    "autostruct.results": "config",
    "autostruct.data": "data",
    "autostruct.models": "models",
    "autostruct.measure": "measure",
    "autostruct.prune": "prune",
    "autostruct.nas": "nas",
    # The small Env protocol (action specs, the step contract) that the pruning and NAS envs implement: DESIGN's
    # "envs come in through a small Env protocol" is what lets rl/ stay ignorant of prune/ and nas/.
    "autostruct.rl.env": "env-protocol",
    "autostruct.rl": "rl",
    "autostruct.backends": "backends",
    "autostruct.baselines": "baselines",
    "autostruct.export": "export",
    "autostruct.report": "report",
    "autostruct.pipeline": "pipeline",
    "autostruct.search": "pipeline",
    # The searches that run on the shared pipeline (autostruct.pipeline.run_search): each supplies its SearchKind
    # and keeps its documented entry point (autostruct.mtacp.run_prune, autostruct.nas.search.search).
    "autostruct.mtacp": "pipeline",
    "autostruct.nas.search": "pipeline",
    "autostruct.nas.custom_search": "pipeline",
    "autostruct.api": "api",
    "autostruct": "api",  # the package's own names (train, search, prune) are the API
    "autostruct.cli": "cli",
}

#: DESIGN.md's "may import" column, as written. A layer may also import itself, ``base`` (errors, utils) and
#: ``config`` (which imports nothing of ours), and whatever the layers it may import may import, except through
#: ``api``: the API is a facade, so the CLI reaches the rest only through it.
MAY_IMPORT: dict[str, set[str]] = {
    "base": set(),
    "config": set(),
    "data": {"config"},
    "models": {"data"},
    "measure": {"models"},
    "prune": {"models", "measure", "env-protocol"},
    "nas": {"models", "measure", "env-protocol"},
    "env-protocol": set(),
    "rl": {"env-protocol"},
    "backends": {"rl"},
    "baselines": {"prune", "nas", "rl"},
    "export": {"models"},
    "report": set(),
    "pipeline": {"prune", "nas", "rl", "backends", "export", "report"},
    "api": {"pipeline", "baselines", "prune", "nas", "rl", "backends", "export", "report", "measure", "models",
            "data"},
    "cli": {"api"},
}

#: Today's violations of the direction: ``(importing module, imported module) -> reason``.
KNOWN: dict[tuple[str, str], str] = {}

#: Imports inside one layer that close a circle: ``(importing module, imported module) -> reason``. Upward
#: imports listed in :data:`KNOWN` are left out of the circle check (they are already errors there).
KNOWN_CYCLE_EDGES: dict[tuple[str, str], str] = {}


#: Modules allowed to import our own modules inside functions without a reason (none today). Anywhere else a
#: function-level import of an autostruct module must say why on its line with a ``# lazy:`` comment (e.g. the
#: CLI keeping ``--help`` free of torch), so it cannot quietly hide a cycle again.
FUNCTION_LEVEL_IMPORTS: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted((SRC / ROOT).rglob("*.py"))}


def function_level_imports(module: str) -> list[int]:
    """Lines of ``module`` that import one of our modules inside a function without a ``# lazy:`` reason."""
    path = MODULES[module]
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found = []
    for fn in ast.walk(ast.parse(source, str(path))):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            ours = any(n == ROOT or n.startswith(ROOT + ".") for n in names) or getattr(node, "level", 0)
            if ours and "# lazy:" not in lines[node.lineno - 1]:
                found.append(node.lineno)
    return sorted(set(found))


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Line numbers of imports under ``if TYPE_CHECKING:`` (never run, so they cannot close a circle)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and getattr(test, "id", getattr(test, "attr", None)) == "TYPE_CHECKING":
            lines |= {n.lineno for stmt in node.body for n in ast.walk(stmt) if isinstance(n, ast.Import | ast.ImportFrom)}
    return lines


def imports_of(module: str) -> Iterator[tuple[str, int, bool]]:
    """``(imported module, line, runs)`` for every import of one of our modules in ``module``, at any depth.

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module, else ``pkg``. A bare
    ``import autostruct`` (e.g. to find where the package lives) is left out: every import loads it anyway.
    """
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    typing_only = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            if target == ROOT and isinstance(node, ast.Import):
                continue
            if target == ROOT or target.startswith(ROOT + "."):
                yield target, node.lineno, node.lineno not in typing_only


def layer_of(module: str) -> str:
    matches = [p for p in LAYER_OF if module == p or module.startswith(p + ".")]
    if not matches:
        raise AssertionError(f"{module} is in no layer: add it to LAYER_OF (and to DESIGN.md's table)")
    return LAYER_OF[max(matches, key=len)]


def allowed_layers(layer: str) -> set[str]:
    allowed, todo = {layer, "base"} | ({"config"} if layer != "base" else set()), [layer]
    while todo:
        current = todo.pop()
        for lower in MAY_IMPORT[current]:
            if lower not in allowed:
                allowed.add(lower)
                if lower != "api":
                    todo.append(lower)
    return allowed


def _edges() -> dict[tuple[str, str], list[int]]:
    edges: dict[tuple[str, str], list[int]] = {}
    for module in MODULES:
        for target, line, _ in imports_of(module):
            if target != module:
                edges.setdefault((module, target), []).append(line) if line not in edges.get((module, target), []) else None
    return edges


def violations() -> dict[tuple[str, str], str]:
    """Every import against the direction: ``(module, imported) -> "layer -> layer (lines)"``."""
    found = {}
    for (module, target), lines in _edges().items():
        src, dst = layer_of(module), layer_of(target)
        if dst not in allowed_layers(src):
            found[(module, target)] = f"{src} -> {dst} (line {', '.join(map(str, lines))})"
    return found


def runtime_graph() -> dict[str, set[str]]:
    """Who imports whom when the code runs (module and function level, not ``TYPE_CHECKING``)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _, runs in imports_of(module):
            if runs and target != module:
                graph[module].add(target if target in MODULES else target.rpartition(".")[0])
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the ~120 modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _without(graph: dict[str, set[str]], edges) -> dict[str, set[str]]:
    return {m: {t for t in targets if (m, t) not in edges} for m, targets in graph.items()}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)
    assert set(MAY_IMPORT) == set(LAYER_OF.values())


def test_rules_see_function_level_imports():
    """The parser finds imports inside functions, so a lazy import cannot hide a dependency."""
    ours = [t for t, _, _ in imports_of("autostruct.models.cache")]
    assert "autostruct.models.registry" in ours or "autostruct.models" in ours
    assert allowed_layers("cli") == {"cli", "api", "base", "config"}
    assert "data" in allowed_layers("prune") and "rl" not in allowed_layers("prune")


def test_no_new_layer_violations():
    new = {edge: why for edge, why in violations().items() if edge not in KNOWN}
    assert not new, "imports against DESIGN.md's direction:\n" + "\n".join(
        f"  {m} imports {t}: {why}" for (m, t), why in sorted(new.items())
    )


def test_known_violations_are_not_stale():
    stale = sorted(set(KNOWN) - set(violations()))
    assert not stale, "fixed: delete these from KNOWN in tests/test_import_rules.py:\n" + "\n".join(
        f"  {m} -> {t}" for m, t in stale
    )


def test_no_import_cycles():
    graph = _without(runtime_graph(), set(KNOWN) | set(KNOWN_CYCLE_EDGES))
    found = cycles(graph)
    assert not found, "modules that import each other in a circle (function-level imports count):\n" + "\n".join(
        "  " + " <-> ".join(c) for c in found
    )


def test_known_cycle_edges_are_not_stale():
    """Each listed edge still closes a circle; a broken circle's edge must be deleted from the list."""
    graph = _without(runtime_graph(), set(KNOWN))
    in_cycle = {m: i for i, c in enumerate(cycles(graph)) for m in c}
    stale = sorted(
        (m, t) for m, t in KNOWN_CYCLE_EDGES
        if t not in graph.get(m, set()) or m not in in_cycle or in_cycle[m] != in_cycle.get(t)
    )
    assert not stale, "no longer in a circle: delete from KNOWN_CYCLE_EDGES:\n" + "\n".join(
        f"  {m} -> {t}" for m, t in stale
    )


def test_no_new_function_level_imports():
    """Our modules import each other at module level; an import inside a function hid a cycle more often than not."""
    found = {m: function_level_imports(m) for m in MODULES}
    new = {m: lines for m, lines in found.items() if lines and m not in FUNCTION_LEVEL_IMPORTS}
    assert not new, "imports of autostruct modules inside functions (move them to the top, or add '# lazy: why'):\n" + (
        "\n".join(f"  {m}: lines {', '.join(map(str, lines))}" for m, lines in sorted(new.items()))
    )
    stale = sorted(m for m in FUNCTION_LEVEL_IMPORTS if not found.get(m))
    assert not stale, "no function-level imports left: delete from FUNCTION_LEVEL_IMPORTS:\n  " + "\n  ".join(stale)


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_lower_layers_never_reach_up(layer):
    """The allowed relation has no circle of its own (else the rule could not define a direction)."""
    for lower in allowed_layers(layer) - {layer}:
        assert layer not in allowed_layers(lower), f"{layer} and {lower} may import each other"
