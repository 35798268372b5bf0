"""SQL lives in repositories (app/persistence/repositories): domain functions and tasks call them and never
build a query themselves, so a query has one place to be found, counted and changed."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "app"
# What the use cases may take from SQLAlchemy: the session type, its events and errors, and func.now() as
# a column value. Everything that builds a statement (select, insert, update, delete, text, ...) may not.
ALLOWED = {"Session", "SessionTransaction", "event", "IntegrityError", "func"}


def _sqlalchemy_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sqlalchemy" for a in node.names):
            names.add("sqlalchemy")
    return names


def test_domain_and_tasks_build_no_queries():
    offenders = {}
    for folder in ("domain", "jobs/tasks"):
        for path in sorted((ROOT / folder).glob("*.py")):
            extra = _sqlalchemy_names(path) - ALLOWED
            if extra:
                offenders[str(path.relative_to(ROOT))] = sorted(extra)
    assert not offenders, f"move these queries into a repository: {offenders}"


def test_the_check_sees_a_query_builder(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from sqlalchemy import select, func\nfrom sqlalchemy.orm import Session\n")
    assert _sqlalchemy_names(module) - ALLOWED == {"select"}
