"""The architecture stays what DESIGN.md draws: one-way layers, no import cycles, capabilities not names.

``lint-imports`` (the layers contract in pyproject.toml) runs in CI too; these tests keep the
rules that a contract cannot express: no cycle anywhere in ``src/edgekit`` (imports inside
functions count), no code outside ``edgekit.runtimes`` that decides by a runtime's name, one
place that builds a Predictor, and an error tree whose drawing lists every error class.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import grimp
import pytest

import edgekit
import edgekit.errors
from edgekit.registry import runtime_names

SRC = Path(edgekit.__file__).parent


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("edgekit", include_external_packages=False)


def _strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's algorithm over the module graph (every import, lazy ones included)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles_lazy_imports_included(graph: grimp.ImportGraph) -> None:
    cycles = _strongly_connected(graph)
    assert not cycles, "import cycles in src/edgekit (imports inside functions count):\n" + "\n".join(
        " <-> ".join(sorted(c)) for c in cycles)


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = grimp.build_graph("edgekit", include_external_packages=False)
    graph.add_import(importer="edgekit.errors", imported="edgekit.predictor")  # errors -> ... -> errors
    assert any("edgekit.errors" in c for c in _strongly_connected(graph))


def test_internal_modules_do_not_import_the_top_level_package(graph: grimp.ImportGraph) -> None:
    """``import edgekit`` inside edgekit hides which layer a module uses; name the module instead."""
    importers = {m for m in graph.find_modules_that_directly_import("edgekit") if m != "edgekit.__main__"}
    assert not importers, f"import edgekit.<module> instead of edgekit in: {sorted(importers)}"


def _runtime_name_comparisons(path: Path, names: set[str], root: Path = SRC) -> list[str]:
    """``x == "openvino"``, ``name in ("mnn", ...)``, ``if runtime != "litert"`` on a runtime-like value."""
    hits = []
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        literals = set()
        for op in operands:
            if isinstance(op, ast.Constant) and isinstance(op.value, str):
                literals.add(op.value)
            elif isinstance(op, (ast.Tuple, ast.List, ast.Set)):
                literals |= {e.value for e in op.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        if not literals & names:
            continue
        subject = " ".join(ast.unparse(op) for op in operands if not isinstance(op, ast.Constant))
        if "format" in subject or "fmt" in subject or subject.strip().rsplit(".", 1)[-1] in {"to", "suffix"}:
            continue  # "openvino" and "mnn" are also model formats; comparing a format is not deciding by runtime
        hits.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return hits


def test_nothing_outside_the_adapters_decides_by_runtime_name() -> None:
    names = set(runtime_names())
    hits = [hit for path in sorted(SRC.rglob("*.py")) if "runtimes" not in path.relative_to(SRC).parts
            for hit in _runtime_name_comparisons(path, names)]
    assert not hits, "use a capability (Runtime.capabilities, Session.op_profile(), ...) instead:\n" + "\n".join(hits)


def test_the_name_check_catches_a_name_comparison(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('def f(rt, runtime, fmt):\n    if rt.name == "openvino":\n        return 1\n'
                   '    if fmt == "openvino":\n        return 2\n    return runtime in ("mnn", "x")\n')
    hits = _runtime_name_comparisons(bad, {"openvino", "mnn"}, root=tmp_path)
    assert [h.split(":")[1] for h in hits] == ["2", "6"], hits


def test_one_place_builds_a_predictor() -> None:
    """Placement decides; only ``edgekit.predictor.load`` wraps the decision in a Predictor."""
    builders = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Predictor":
                builders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert len(builders) == 1 and builders[0].startswith("predictor.py"), builders


def test_error_tree_drawing_lists_every_error_class() -> None:
    doc = edgekit.errors.__doc__ or ""
    classes = {name for name, obj in inspect.getmembers(edgekit.errors, inspect.isclass)
               if issubclass(obj, edgekit.errors.EdgekitError)}
    assert classes == set(edgekit.errors.__all__)
    missing = [name for name in classes if name not in doc]
    assert not missing, f"draw these in the errors.py docstring: {missing}"
    assert classes <= set(edgekit.__all__), classes - set(edgekit.__all__)


def test_no_error_class_is_defined_outside_errors_py() -> None:
    tree = set(edgekit.errors.__all__)
    outside = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "errors.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases} & tree:
                outside.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}")
    assert not outside, f"put edgekit's errors in errors.py, in the one tree: {outside}"


def _layers() -> list[set[str]]:
    """The layers contract of pyproject.toml (the one ``lint-imports`` checks), top first, as full module names."""
    from edgekit.tomlfile import read_toml

    config = read_toml(SRC.parents[1] / "pyproject.toml")["tool"]["importlinter"]
    (contract,) = config["contracts"]
    out = []
    for layer in contract["layers"]:
        parts = layer.replace(":", "|").split("|")
        out.append({f"edgekit.{p.strip()}" for p in parts})
    return out


def _violations(graph: grimp.ImportGraph) -> list[str]:
    layers = _layers()
    found = []
    for hi, upper in enumerate(layers):
        for lower in layers[hi + 1:]:
            for low in lower:
                for up in upper:
                    chain = graph.find_shortest_chain(importer=low, imported=up, as_packages=True)
                    if chain:
                        found.append(" -> ".join(chain))
    return found


def test_layers_contract_covers_every_module_and_holds(graph: grimp.ImportGraph) -> None:
    listed = set().union(*_layers())
    top = {m for m in graph.modules if m.count(".") == 1} - {"edgekit.__main__", "edgekit._version"}
    assert top == listed, f"put these in a layer of pyproject.toml's contract: {sorted(top - listed)}"
    assert not _violations(graph)


def test_layers_check_catches_an_upward_import() -> None:
    graph = grimp.build_graph("edgekit", include_external_packages=False)
    graph.add_import(importer="edgekit.runtimes.onnxruntime", imported="edgekit.profiling.engine")
    assert any("edgekit.runtimes.onnxruntime" in v for v in _violations(graph))
