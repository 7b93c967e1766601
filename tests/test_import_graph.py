"""ssd_jax's packages import each other without cycles (imports inside functions included)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ssd_jax"


def package_imports() -> dict[str, set[str]]:
    """Top-level part of ssd_jax (a subpackage or module) → the other parts it imports."""
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        source = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("ssd_jax."):
                    targets = {node.module.split(".")[1]}
                elif node.module == "ssd_jax":
                    targets = {alias.name for alias in node.names}
                else:
                    continue
            elif isinstance(node, ast.Import):
                targets = {a.name.split(".")[1] for a in node.names if a.name.startswith("ssd_jax.")}
            else:
                continue
            edges.setdefault(source, set()).update(targets - {source, "__init__"})
    return edges


def cycle_through(edges: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start → … → start, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in edges.get(node, ()):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def test_the_scan_sees_the_imports():
    edges = package_imports()
    assert {"problems"} <= edges["data"] and {"problems", "sampling"} <= edges["evaluation"]
    assert "text" in edges["checkpoints"]


def test_no_package_imports_itself_through_another():
    edges = package_imports()
    cycles = [cycle for name in sorted(edges) if (cycle := cycle_through(edges, name))]
    assert cycles == []
