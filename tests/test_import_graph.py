"""The package's import graph (from the source, with ``ast``): no cycle, no upward import.

Data flows one way: datasets -> descriptors -> audit -> reports, with the top (``monoculture.cli``,
``monoculture.api``, ``monoculture.results``, ``monoculture.demo``) above all. Every ``import`` statement
counts, also those inside functions (a lazy import is still a dependency). The root package
``monoculture`` is the namespace of all: lower layers may import its ``__version__`` and nothing else, and
its ``__init__`` imports package modules only inside functions (the lazy public API). A registry that
imports its entries by name (``importlib.import_module``: the readers, the descriptors) is their host, not
their dependant: such loads are not ``import`` statements and are not edges.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOT = "monoculture"
#: Source folder -> package name, and the layer of each (higher may import lower, never the reverse).
FOLDERS = {"datasets": f"{ROOT}.datasets", "descriptors": f"{ROOT}.descriptors", "audit": f"{ROOT}.audit",
           "reports": f"{ROOT}.reports", "src/monoculture": ROOT}
LAYERS = {f"{ROOT}.datasets": 0, f"{ROOT}.descriptors": 1, f"{ROOT}.audit": 2, f"{ROOT}.reports": 3}
TOP = 4


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package ``__init__``)."""
    out = {}
    for folder, package in FOLDERS.items():
        base = REPO / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base)
            if "__pycache__" in rel.parts:
                continue
            parts = list(rel.with_suffix("").parts)
            is_init = parts[-1] == "__init__"
            if is_init:
                parts = parts[:-1]
            out[".".join([package, *parts])] = (path, is_init)
    return out


def layer(module: str) -> int:
    """Layer of a module; a ``__main__`` (``python -m monoculture.audit``) is a command line, hence the top."""
    if module.endswith(".__main__"):
        return TOP
    for package, rank in LAYERS.items():
        if module == package or module.startswith(package + "."):
            return rank
    return TOP


def _imports(module: str, path: Path, is_init: bool, modules: dict):
    """(target module, names imported, at module level) of every import statement of ``module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if is_init else module.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        at_top = id(node) in top_level
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == ROOT or alias.name.startswith(ROOT + "."):
                    yield _nearest(alias.name, modules), (), at_top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                full = ".".join(base + ([node.module] if node.module else []))
            else:
                full = node.module or ""
                if not (full == ROOT or full.startswith(ROOT + ".")):
                    continue
            for alias in node.names:
                sub = f"{full}.{alias.name}"
                if sub in modules:
                    yield sub, (), at_top
                else:
                    yield _nearest(full, modules), (alias.name,), at_top


def _nearest(name: str, modules: dict) -> str:
    while name not in modules and "." in name:
        name = name.rpartition(".")[0]
    return name


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    details = []
    for module, (path, is_init) in modules.items():
        for target, names, at_top in _imports(module, path, is_init, modules):
            if target not in modules or target == module:
                continue
            details.append((module, target, names, at_top))
            if module == ROOT and not at_top:
                continue  # the root package's lazy API (module __getattr__)
            edges[module].add(target)
    return modules, edges, details


def test_graph_covers_the_package(graph):
    modules, edges, _ = graph
    for expected in (f"{ROOT}.datasets.registry", f"{ROOT}.datasets.readers.mptrj", f"{ROOT}.audit.run",
                     f"{ROOT}.audit.distributed", f"{ROOT}.reports.writer", f"{ROOT}.cli", f"{ROOT}.api"):
        assert expected in modules
    assert f"{ROOT}.datasets.readers.folder" in {m for m in modules if f"{ROOT}.datasets.registry" in edges[m]}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_cycle_finder_finds_a_planted_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle(graph):
    _, edges, _ = graph
    cycles = _cycles(edges)
    assert not cycles, f"import cycles (each a set of modules importing one another): {cycles}"


def test_no_upward_import(graph):
    _, _, details = graph
    upward = []
    for src, dst, names, at_top in details:
        if dst == ROOT:
            if src != ROOT and set(names) - {"__version__"}:
                upward.append(f"{src} imports {names} from the root package (only __version__ is allowed)")
            continue
        if src == ROOT:
            if at_top:
                upward.append(f"the root package imports {dst} at import time (the API must stay lazy)")
            continue
        if layer(dst) > layer(src):
            upward.append(f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})")
    assert not upward, "upward imports: " + "; ".join(upward)


def test_layer_rule_flags_an_upward_edge():
    assert layer(f"{ROOT}.datasets.registry") < layer(f"{ROOT}.audit.run") < layer(f"{ROOT}.reports.writer")
    assert layer(f"{ROOT}.api") == layer(f"{ROOT}.cli") == TOP
