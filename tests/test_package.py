"""Package-wide rules: an acyclic import graph (every import statement counted, function-local ones too), test files
that import no other test file, and config names resolved by registries with one-line errors."""

import ast
import pathlib

import pytest

from clr_gan_jax.errors import UserError
from clr_gan_jax.registry import Registry

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "clr_gan_jax"
TESTS = pathlib.Path(__file__).resolve().parent


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its body (a parent package is not counted as an edge)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in candidates:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    targets.add(target)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for successor in sorted(graph[node]):
            if state.get(successor) == "open":
                return stack[stack.index(successor) :] + [successor]
            if successor not in state and (cycle := visit(successor)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_import_graph_is_acyclic():
    graph = import_graph()
    assert len(graph) > 40 and "clr_gan_jax.errors" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    assert graph["clr_gan_jax.errors"] == set()  # errors imports nothing from the package


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_test_files_import_no_other_test_file():
    for path in TESTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.startswith("test_") for n in names), f"{path.name} imports {names}"


def test_registry_resolves_names_and_refuses_unknown_ones_in_one_line():
    registry = Registry("model.arch")
    registry.register("a")(1)
    registry.register("b")(2)
    assert registry.get("b") == 2 and registry.names() == ("a", "b") and "a" in registry
    with pytest.raises(UserError, match=r"^model.arch: unknown name 'c'; known: a, b$"):
        registry.get("c")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a")(3)
