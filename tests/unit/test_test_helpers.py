"""Test modules share helpers through tests/factories.py (and the other helper modules), never each other."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_module_imports_another():
    offenders = []
    for path in sorted(TESTS.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            modules = [n for n in names if n.rsplit(".", 1)[-1].startswith("test_")]
            offenders += [f"{path.relative_to(TESTS)} imports {n}" for n in modules]
    assert not offenders, offenders
