"""The import direction of STYLE.md, checked by parsing imports with ast."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "deepseg"

# Layer of each top-level module; a module may import only from its own or lower layers.
LAYERS = {
    "metrics": 0, "losses": 0, "nn": 0, "features": 0, "io": 0, "progress": 0, "configs": 0,
    "validation": 0, "_version": 0, "constraints": 0, "options": 0, "threads": 0,
    "refine": 1, "jobs": 1,
    "data": 1, "baselines": 1, "bundle": 1, "drift": 1, "export": 1,
    "deep": 2, "auto": 2,
    "insight": 3,
    "tasks": 4,
    "cli": 5,
}  # fmt: skip
# data and the classic baselines never import each other, although they share a layer
FORBIDDEN = {("data", "baselines"), ("baselines", "data")}


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "deepseg" and len(parts) > 1 else None


def _runtime_nodes(node: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (type-only imports cost nothing)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
            continue
        yield child
        yield from _runtime_nodes(child)


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_imports_point_backwards():
    problems = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) == 1 and rel.stem == "__init__":
            continue
        src = rel.parts[0].removesuffix(".py")
        if src not in LAYERS:
            problems.append(f"{rel}: module '{src}' has no layer in this test")
            continue
        for module in _imports(path):
            dst = _top(module)
            if dst is None or dst == src:
                continue
            dst = dst.removesuffix(".py")
            if dst == "__version__":
                continue
            if dst not in LAYERS:
                problems.append(f"{rel} imports unknown deepseg module {module}")
            elif LAYERS[dst] > LAYERS[src] or (src, dst) in FORBIDDEN:
                problems.append(f"{rel} imports {module}")
    assert not problems, problems


def test_package_import_is_light():
    import subprocess
    import sys

    code = "import deepseg, sys; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- no import cycles, also between the files of one package -----------------------------------


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, name: str | None, modules: set[str]) -> str | None:
    """The deepseg module an import binds: ``from a.b import c`` is ``a.b.c`` when that is a
    module of the package, else ``a.b``."""
    if name is not None and f"{module}.{name}" in modules:
        return f"{module}.{name}"
    return module if module in modules else None


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports (at any depth of its code, type-only imports
    under ``if TYPE_CHECKING:`` included: a circle of types is still a circle), for every
    file."""
    files = {_module_name(p, root): p for p in root.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for src, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [_resolve(a.name, None, modules) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [_resolve(node.module, a.name, modules) for a in node.names]
            else:
                continue
            graph[src].update(t for t in targets if t is not None and t != src)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle found by a depth-first search (one per back edge)."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_no_import_cycles_between_any_two_files():
    assert find_cycles(import_graph(PACKAGE)) == []


def test_a_planted_cycle_between_two_files_of_one_package_is_found(tmp_path):
    pkg = tmp_path / "deepseg"
    (pkg / "deep").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "deep" / "__init__.py").write_text("")
    (pkg / "deep" / "a.py").write_text("from deepseg.deep.b import thing\n")
    # the cycle closes inside a function: still a cycle between the two files
    (pkg / "deep" / "b.py").write_text(
        "def thing():\n    from deepseg.deep import a\n    return a\n"
    )
    (pkg / "deep" / "c.py").write_text("from deepseg.deep import a\n")  # no cycle through c
    cycles = find_cycles(import_graph(pkg))
    assert cycles == [["deepseg.deep.a", "deepseg.deep.b", "deepseg.deep.a"]]
