"""The package's import graph, read from source with ``ast``, has no circle.

Every import statement counts: at module level, under ``if TYPE_CHECKING:`` and inside
functions. Python itself would only trip over a circle of module-level imports, but the graph is
read here as the package's layering (config → data → … → study DB → dashboard, nothing imports
upward), and a reader follows the other two kinds as well:

- a type-only import is a dependency on the other module's names; the circle issue 18 names
  (``sampler/_propose.py`` holds ``ProposalSettings`` and imports ``_acquisition``, ``_model``
  and ``_optimise``, which import it back) is made of them, and it breaks at import time as soon
  as one of them is needed at run time;
- an import inside a function is there to keep a heavy import (torch, Ray, Dash) lazy, not to
  hide a circle; counting it costs nothing today (it adds no circle) and keeps it that way.

An edge goes to the module named (``from a.b import c`` is an edge to ``a.b.c`` when ``c`` is a
module, else to ``a.b``), never to its parent packages: otherwise every package whose
``__init__`` re-exports its own modules would be a circle with them, which is fine as long as the
modules import each other and not the package face.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "autostudent"


def module_files(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name → file, for every module of the package."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the package's modules it imports (anywhere in its source)."""
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from ..x import y
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in files else base)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[tuple[list[str], list[str]]]:
    """Each group of modules that import each other round a circle (a strongly connected
    component of the graph, by Tarjan's algorithm), with one shortest circle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[tuple[list[str], list[str]]] = []

    def visit(v: str) -> None:  # recursive: the package's import chains are a dozen deep
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = stack[stack.index(v) :]
            del stack[stack.index(v) :]
            if len(group) > 1:
                members = sorted(group)
                found.append((members, _circle_through(graph, set(members), members[0])))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _circle_through(graph: dict[str, set[str]], members: set[str], start: str) -> list[str]:
    """A shortest path start → … → start among `members` (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if w not in previous:
                    previous[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"{start} is in a circle's group but on no circle")


def test_the_package_has_no_import_circle() -> None:
    graph = import_graph(module_files())
    assert len(graph) > 40 and "autostudent.spaces._space" in graph  # the walk found the package
    found = circles(graph)
    assert not found, "import circles:\n" + "\n".join(
        f"{' -> '.join(circle)}  (the group: {', '.join(members)})" for members, circle in found
    )


def test_the_circle_finder_sees_every_kind_of_import(tmp_path) -> None:
    """A package made to hold a circle through an absolute, a relative, a type-only and a lazy
    import is reported with the circle's path; a package face importing its modules is not."""
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from pkg import a, d\n")
    (root / "a.py").write_text("from pkg.sub import b\n")
    (root / "sub" / "__init__.py").write_text("from pkg.sub.b import thing\n")
    (root / "sub" / "b.py").write_text(
        "try:\n    from ..c import thing\nexcept ImportError:\n    pass\n"
    )
    (root / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\n"
    )
    (root / "d.py").write_text("def lazy():\n    from . import a\n")
    graph = import_graph(module_files(root))
    assert graph == {
        "pkg": {"pkg.a", "pkg.d"},
        "pkg.a": {"pkg.sub.b"},  # `b` is a module: the edge goes to it, not to pkg.sub
        "pkg.sub": {"pkg.sub.b"},
        "pkg.sub.b": {"pkg.c"},
        "pkg.c": {"pkg.d"},
        "pkg.d": {"pkg.a"},
    }
    members = ["pkg.a", "pkg.c", "pkg.d", "pkg.sub.b"]
    assert circles(graph) == [(members, ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.d", "pkg.a"])]
    # Without d's import no circle is left: pkg.a importing pkg.sub.b runs pkg/__init__ and
    # pkg/sub/__init__ first, yet that is not an edge back to them.
    (root / "d.py").write_text("def lazy():\n    import os\n")
    assert circles(import_graph(module_files(root))) == []
