"""The layers hold: core/ knows nothing of Slack, dotenv or the environment; __all__ is honest."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest

import core

CORE = Path(core.__file__).parent
MODULES = sorted(CORE.rglob("*.py"))
FORBIDDEN = ("bot", "slack_bolt", "slack_sdk", "dotenv")


def imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.append(str(node.args[0].value))
    return names


def environment_reads(tree: ast.AST) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found.extend(
                f"line {node.lineno}: from os import {a.name}"
                for a in node.names
                if a.name in ("environ", "getenv", "environb", "*")
            )
        elif isinstance(node, ast.Name) and node.id in ("environ", "getenv"):
            found.append(f"line {node.lineno}: {node.id}")
    return found


def test_the_scan_sees_every_core_module() -> None:
    names = {p.relative_to(CORE).as_posix() for p in MODULES}
    assert {"service.py", "domain.py", "store/sql.py", "migrations/env.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_core_imports_nothing_of_the_edge(path: Path) -> None:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    bad = [m for m in imported_modules(tree) if m.split(".")[0] in FORBIDDEN]
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_core_never_reads_the_environment(path: Path) -> None:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    assert environment_reads(tree) == []


def test_the_scanner_catches_what_it_looks_for() -> None:
    sample = ast.parse(
        "import os\nimport slack_sdk.web\nfrom dotenv import load_dotenv\n"
        "from bot.cli import main\nx = os.environ['A']\ny = os.getenv('B')\n"
        "from os import getenv\n"
    )
    assert {m.split(".")[0] for m in imported_modules(sample)} >= set(FORBIDDEN) - {"slack_bolt"}
    assert len(environment_reads(sample)) == 3


def test_every_name_in_core_all_exists() -> None:
    missing = [name for name in core.__all__ if not hasattr(core, name)]
    assert missing == []
    assert len(set(core.__all__)) == len(core.__all__)


def test_every_public_name_of_core_is_in_all() -> None:
    public = {
        name
        for name, value in vars(core).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(core.__all__) == set()


def test_the_error_tree_is_exported() -> None:
    assert {"PlanError", "AppPurged", "RequestAlreadyDecided", "CsvImportError"} <= set(
        core.__all__
    )
    assert issubclass(core.AppPurged, core.PlanError)


def test_the_edge_uses_only_what_core_exports() -> None:
    """bot/ imports `core` itself, never its modules (STYLE: bot uses core/__init__'s exports)."""
    root = Path(__file__).resolve().parents[2] / "bot"
    offenders = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("core."):
                offenders.append(f"{path.name}: from {node.module} import ...")
            if isinstance(node, ast.Import):
                offenders += [
                    f"{path.name}: import {a.name}"
                    for a in node.names
                    if a.name.startswith("core.")
                ]
    assert offenders == []
