"""The import graph inside learnit_tf/: no cycle, and shared layers name no specific kind.

Imports are read from the source with `ast`, function-local imports included (a cycle
hidden behind a function-local import is still a cycle: it only moves the failure to
call time, and makes import order matter).
"""

import ast
import functools
import pathlib

import pytest

PACKAGE = "learnit_tf"
PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1] / PACKAGE

#: Shared layers: they may use `learnit_tf.kinds` / `learnit_tf.kinds.registry` (the
#: registry looks kinds up by name) but no module of a specific kind.
SHARED_LAYERS = ("models", "meta", "tasks", "data", "train.py", "zoo.py", "distribute.py",
                 "init_io.py", "atomic.py", "plots.py", "profiling.py", "baselines.py",
                 "evaluation.py", "gin_config.py", "metadata.py",
                 # Also kind-free today, and meant to stay so (scripts dispatch on the registry):
                 "headline.py", "callbacks.py", "shipped.py", "cli.py", "commands", "testing.py",
                 # Added with issues 24 and 26:
                 "locks.py", "output_dir.py", "zoo_transport.py", "zoo_errors.py", "zoo_names.py",
                 "zoo_resolution.py", "whole_curve.py")
KIND_NEUTRAL = {"learnit_tf.kinds", "learnit_tf.kinds.registry"}


def module_name(path):
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.lru_cache(maxsize=None)
def all_modules():
    """{module name: path} of every module under learnit_tf/."""
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _resolve_relative(module, is_package, level, target):
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imported_modules(module, path, modules):
    """learnit_tf modules that `module` imports anywhere in its source (sorted).

    `from a.b import c` counts as importing `a.b.c` when that is a module, else `a.b`.
    Importing a submodule also runs its parent packages' `__init__`, so those count too.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            if name != PACKAGE and not name.startswith(PACKAGE + "."):
                continue
            # The module itself and its parent packages (run on import).
            parts = name.split(".")
            for i in range(2, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if candidate in modules:
                    found.add(candidate)
    found.discard(module)
    # A package's __init__ is run before its submodules, so a submodule "importing" its
    # own parent package is not an edge that can close a cycle at import time.
    return sorted(m for m in found if not module.startswith(m + "."))


@functools.lru_cache(maxsize=None)
def import_graph():
    modules = all_modules()
    return {m: imported_modules(m, p, modules) for m, p in modules.items()}


def find_cycles(graph):
    """Every strongly connected component with more than one module (Tarjan), each as
    one concrete cycle through it (a list of modules, first == last)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_one_cycle(graph, set(c), c[0]) for c in components]


def _one_cycle(graph, component, start):
    """A shortest path start -> ... -> start inside `component` (breadth-first)."""
    parents, frontier = {start: None}, [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for succ in graph[node]:
                if succ == start:
                    path = [node]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, node, start]
                if succ in component and succ not in parents:
                    parents[succ] = node
                    next_frontier.append(succ)
        frontier = next_frontier
    raise AssertionError(f"no cycle through {start}")


def is_shared_layer(module):
    rest = module[len(PACKAGE) + 1:]
    top = rest.split(".")[0]
    return any(top == layer.removesuffix(".py") for layer in SHARED_LAYERS)


def format_cycle(cycle):
    return " -> ".join(cycle)


def test_the_graph_is_read_from_the_sources():
    graph = import_graph()
    # Known edges, one of them a function-local import (so the parser sees those too).
    assert "learnit_tf.kinds.registry" in graph["learnit_tf.kinds"]
    assert "learnit_tf.kinds.image.task" in graph["learnit_tf.kinds.ct.task"]
    assert "learnit_tf.kinds.registrants" not in graph["learnit_tf.kinds.registry"]
    local = [m for m, p in all_modules().items()
             if any(isinstance(n, ast.FunctionDef) and any(isinstance(s, (ast.Import,
                                                                          ast.ImportFrom))
                                                           for s in ast.walk(n))
                    for n in ast.walk(ast.parse(p.read_text())))]
    assert local, "expected at least one module with a function-local import"


def test_find_cycles_reports_a_cycle_and_only_real_ones():
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["e2"], "e2": []}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": ["b"], "b": []}) == []


def test_no_import_cycle_inside_learnit_tf():
    cycles = find_cycles(import_graph())
    message = "\n".join(format_cycle(c) for c in cycles)
    print(f"\nimport cycles:\n{message}" if cycles else "\nno import cycle")
    assert not cycles, f"import cycles inside {PACKAGE}/ (function-local imports count):\n" \
                       f"{message}"


@pytest.mark.parametrize("module", sorted(m for m in all_modules() if is_shared_layer(m)))
def test_shared_layer_names_no_kind(module):
    imports = import_graph()[module]
    named = [m for m in imports if m.startswith(f"{PACKAGE}.kinds.") and m not in KIND_NEUTRAL]
    assert not named, f"{module} (a shared layer) imports kind modules {named}; look kinds " \
                      f"up through learnit_tf.kinds.registry instead"
