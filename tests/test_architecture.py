"""The import direction of STYLE.md, checked by parsing imports with ast."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "deepseg"

# Layer of each top-level module; a module may import only from its own or lower layers.
LAYERS = {
    "metrics": 0, "losses": 0, "nn": 0, "features": 0, "io": 0,
    "data": 1, "models": 1, "bundle": 1, "drift": 1, "export": 1,
    "cluster": 2,
    "insight": 3,
    "tasks": 4,
    "cli": 5,
}  # fmt: skip
# data and models never import each other, although they share a layer
FORBIDDEN = {("data", "models"), ("models", "data")}


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
