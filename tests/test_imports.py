"""The import graph inside learnit_tf/: the layers of issue 25, no cycle, small modules.

Imports are read from the source with `ast` (code only, not docstring examples),
function-local imports included (a cycle or an upward import hidden behind a
function-local import still happens, at call time).

Layers, lowest first (a module may import its own layer or lower ones):
  core, models, meta, data, evaluation, training, zoo, commands.
Signal kinds (`learnit_tf/kinds/<kind>/`) are plugins: a kind may import core, models,
meta, data and evaluation, and its own package; no other kind, nothing from training,
zoo or commands. Shared modules import no `learnit_tf.kinds.<kind>` module and do not
name one in a string either (the registry finds kinds; only
`learnit_tf.kinds.registrants` lists them). Old import paths kept as aliases
(`sys.modules[__name__] = <new module>`) are in their target's layer.
"""

import ast
import functools
import pathlib

import pytest

PACKAGE = "learnit_tf"
PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1] / PACKAGE

LAYERS = ("core", "models", "meta", "data", "evaluation", "training", "zoo", "commands")
#: The package's `__init__` wires the layers together (the preset loader, the init
#: resolver) and may import any of them.
TOP = "package"
KIND = "kind"
REGISTRANTS = "learnit_tf.kinds.registrants"

#: Module (or package prefix) -> layer. The longest matching prefix wins. Old flat
#: modules are listed under their target package's layer, so the rules hold for them
#: both before and after they become aliases.
LAYER_OF = {
    "learnit_tf.core": "core",
    "learnit_tf.tasks": "core",  # Old path of core.task.
    "learnit_tf.kinds": "core",  # The package re-exports the registry (core.registry).
    "learnit_tf.kinds.registry": "core",
    "learnit_tf.kinds.fit_input": "core",
    "learnit_tf.atomic": "core",
    "learnit_tf.locks": "core",
    "learnit_tf.output_dir": "core",
    "learnit_tf.version": "core",
    "learnit_tf._startup": "core",
    "learnit_tf.models": "models",
    "learnit_tf.meta": "meta",
    "learnit_tf.data": "data",
    "learnit_tf.evaluation": "evaluation",
    "learnit_tf.plots": "evaluation",
    "learnit_tf.baselines": "evaluation",
    "learnit_tf.whole_curve": "evaluation",
    "learnit_tf.training": "training",
    "learnit_tf.train": "training",
    "learnit_tf.callbacks": "training",
    "learnit_tf.distribute": "training",
    "learnit_tf.profiling": "training",
    "learnit_tf.gin_config": "training",
    "learnit_tf.zoo": "zoo",
    "learnit_tf.init_io": "meta",
    "learnit_tf.zoo.init_io": "meta",  # Old paths of meta.init_io, core.metadata, core.shipped.
    "learnit_tf.zoo.metadata": "core",
    "learnit_tf.zoo.shipped": "core",
    "learnit_tf.metadata": "core",
    "learnit_tf.headline": "zoo",
    "learnit_tf.shipped": "core",
    "learnit_tf.zoo_errors": "zoo",
    "learnit_tf.zoo_names": "zoo",
    "learnit_tf.zoo_resolution": "zoo",
    "learnit_tf.zoo_transport": "zoo",
    "learnit_tf.convert": "zoo",  # Converts a checkpoint of the original code to an init.
    "learnit_tf.commands": "commands",
    "learnit_tf.cli": "commands",  # Old path: re-exports core.cli and commands.init_args.
    "learnit_tf.testing": "commands",  # Test support: may use every shared layer.
}

#: Library modules allowed over MAX_LINES while the session splits them (issue 25). Each
#: entry names who is splitting it; the list must be empty when the split is done.
MAX_LINES = 500
TOO_LONG_FOR_NOW = {
    # Empty: kinds.nerf.evaluation (H3) and zoo.card (H1) were listed while being split.
}


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


def kind_of_module(module):
    """The kind package a module belongs to ("image" for learnit_tf.kinds.image.task), or None."""
    parts = module.split(".")
    if len(parts) >= 3 and parts[:2] == [PACKAGE, "kinds"] and \
            (PACKAGE_DIR / "kinds" / parts[2]).is_dir():
        return parts[2]
    return None


def alias_target(module, path):
    """The module an old-path alias stands for (`sys.modules[__name__] = <module>`), or None."""
    tree = ast.parse(path.read_text(), filename=str(path))
    replaces_itself = any(
        isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Subscript) and ast.unparse(target) == "sys.modules[__name__]"
            for target in node.targets)
        for node in tree.body)
    if not replaces_itself:
        return None
    imported = [m for m in imported_modules(module, path, all_modules())
                if not module.startswith(m + ".")]
    deepest = sorted(imported, key=lambda m: m.count("."))[-1:]
    return deepest[0] if deepest else None


def layer_of(module):
    """The layer name of `module` (one of LAYERS, KIND, TOP or REGISTRANTS), or None."""
    if module == PACKAGE:
        return TOP
    if module == REGISTRANTS:
        return REGISTRANTS
    if kind_of_module(module):
        return KIND
    path = all_modules().get(module)
    target = alias_target(module, path) if path is not None else None
    if target and target != module:
        return layer_of(target)
    parts = module.split(".")
    for i in range(len(parts), 1, -1):
        prefix = ".".join(parts[:i])
        if prefix in LAYER_OF:
            return LAYER_OF[prefix]
    return None


def rank(layer):
    return LAYERS.index(layer)


#: Names of the kinds (their package folders), for the "names no kind" check.
def kind_names():
    return sorted(p.name for p in (PACKAGE_DIR / "kinds").iterdir()
                  if p.is_dir() and (p / "__init__.py").exists())


def strings_naming_a_kind(path):
    """String constants in the code of `path` that name a kind module
    ("learnit_tf.kinds.<kind>..."), e.g. an importlib string."""
    prefixes = tuple(f"{PACKAGE}.kinds.{name}" for name in kind_names())
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return sorted({node.value for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)
                   and id(node) not in docstrings
                   and (node.value + ".").startswith(tuple(p + "." for p in prefixes))
                   or (isinstance(node, ast.Constant) and isinstance(node.value, str)
                       and id(node) not in docstrings and node.value.startswith(
                           tuple(p + ":" for p in prefixes)))})


def layering_violations():
    """Every import that breaks the layering, as readable lines (sorted)."""
    graph = import_graph()
    found = []
    for module, imports in sorted(graph.items()):
        layer = layer_of(module)
        if layer in (TOP, REGISTRANTS):
            continue
        own_kind = kind_of_module(module)
        for imported in imports:
            target_layer = layer_of(imported)
            target_kind = kind_of_module(imported)
            if target_layer is None or layer is None:
                continue  # Reported by test_every_module_has_a_layer.
            if layer == KIND:
                if target_kind and target_kind != own_kind:
                    found.append(f"kind {own_kind}: {module} imports kind {target_kind} "
                                 f"({imported})")
                elif target_layer == REGISTRANTS:
                    found.append(f"kind {own_kind}: {module} imports {imported}")
                elif target_layer in LAYERS and rank(target_layer) > rank("evaluation"):
                    found.append(f"kind {own_kind}: {module} imports {imported} "
                                 f"({target_layer}: kinds import core..evaluation only)")
            elif target_layer == KIND or target_layer == REGISTRANTS:
                found.append(f"{layer}: {module} imports kind module {imported}")
            elif target_layer == TOP:
                continue  # Every module runs the package __init__ anyway.
            elif rank(target_layer) > rank(layer):
                found.append(f"{layer}: {module} imports {imported} (higher layer "
                             f"{target_layer})")
        if layer != KIND:
            path = all_modules()[module]
            for text in strings_naming_a_kind(path):
                found.append(f"{layer}: {module} names kind module {text!r} in a string")
    return found


def test_the_graph_is_read_from_the_sources():
    graph = import_graph()
    # Known edges, one of them a function-local import (so the parser sees those too).
    assert "learnit_tf.core.registry" in graph["learnit_tf.kinds"]
    assert "learnit_tf.kinds.nerf.task" in graph["learnit_tf.kinds.nerf.kind"]
    assert "learnit_tf.kinds.registrants" not in graph["learnit_tf.core.registry"]
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


def test_every_module_has_a_layer():
    unmapped = sorted(m for m in all_modules() if layer_of(m) is None)
    assert not unmapped, f"map these modules to a layer in LAYER_OF: {unmapped}"


def test_layering():
    found = layering_violations()
    message = "\n".join(found)
    print(f"\nlayering violations:\n{message}" if found else "\nno layering violation")
    assert not found, f"imports against the layers of issue 25:\n{message}"


def test_the_layering_checks_catch_what_they_should():
    assert layer_of("learnit_tf.core.registry") == "core"
    assert layer_of("learnit_tf.kinds.image.task") == KIND
    assert layer_of("learnit_tf.commands.fit") == "commands"
    assert layer_of("learnit_tf.zoo_names") == "zoo"
    assert rank("core") < rank("evaluation") < rank("zoo") < rank("commands")
    assert kind_of_module("learnit_tf.kinds.ct.task") == "ct"
    assert kind_of_module("learnit_tf.kinds.registry") is None
    assert {"image", "ct", "nerf", "audio"} <= set(kind_names())


def test_the_string_check_sees_code_not_docstrings(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('''"""Docstring naming learnit_tf.kinds.image.task is fine."""
import importlib
def f():
    """Also learnit_tf.kinds.ct here."""
    return importlib.import_module("learnit_tf.kinds.image.task"), "learnit_tf.kinds.nerf:x"
''')
    assert strings_naming_a_kind(path) == ["learnit_tf.kinds.image.task",
                                           "learnit_tf.kinds.nerf:x"]


def _library_line_counts():
    return {m: len(p.read_text().splitlines()) for m, p in all_modules().items()}


def test_no_library_module_over_500_lines():
    counts = _library_line_counts()
    too_long = {m: n for m, n in counts.items() if n > MAX_LINES and m not in TOO_LONG_FOR_NOW}
    assert not too_long, f"modules over {MAX_LINES} lines (split them): {too_long}"
    stale = sorted(m for m in TOO_LONG_FOR_NOW if counts.get(m, 0) <= MAX_LINES)
    assert not stale, f"remove from TOO_LONG_FOR_NOW (gone or short now): {stale}"
