"""The command line calls only the public API, and its modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "optimizer" / "cli"
ALLOWED = {"optimizer", "optimizer.api", "optimizer.config", "optimizer.errors"}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import stays inside optimizer.cli
                found.append((node.lineno, "optimizer.cli"))
            else:
                found.append((node.lineno, node.module or ""))
    return found


def test_cli_imports_only_the_public_api():
    files = sorted(CLI.glob("*.py"))
    assert len(files) >= 5
    wrong = [f"{path.name}:{line}: {module}" for path in files for line, module in _imports(path)
             if module.split(".")[0] == "optimizer" and module not in ALLOWED
             and not module.startswith("optimizer.cli")]
    assert not wrong, "optimizer/cli may import only " + ", ".join(sorted(ALLOWED)) + ":\n" + "\n".join(wrong)


def test_the_layering_check_sees_nested_imports(tmp_path):
    code = "def f():\n    from optimizer.run.engine import run\n    import optimizer.models.cache\n"
    (tmp_path / "x.py").write_text(code)
    assert [m for _, m in _imports(tmp_path / "x.py")] == ["optimizer.run.engine", "optimizer.models.cache"]


def test_cli_modules_and_functions_are_small():
    for path in CLI.glob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 400, f"{path.name} has {len(text.splitlines())} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 80, f"{path.name}:{node.lineno} {node.name} has {length} lines"
