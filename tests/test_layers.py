"""The layering of DESIGN.md, as a test: a forbidden import fails the build, not a review.

    adapters -> ingest.kit, ingest.model          (and their own package)
    store    -> ingest.model
    kit      -> ingest.model
    model    -> nothing else of ours
    ingest   -> never adapters (the registry finds them by name)
    nobody   -> ingest.cli
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("ingest", "adapters", "store")

# package -> the project modules it may import (by prefix); anything not ours is always allowed
ALLOWED = {
    "adapters": ("adapters", "ingest.kit", "ingest.model"),
    "store": ("store", "ingest.model"),
    "ingest.kit": ("ingest.kit", "ingest.model"),
    "ingest.model": ("ingest.model",),
    "ingest": ("ingest", "store"),
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """Every import in `path`: line, module (relative made absolute) and the names taken from it."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base, tuple(alias.name for alias in node.names)))
    return found


def rule_for(module: str) -> tuple[str, ...]:
    for package in sorted(ALLOWED, key=len, reverse=True):
        if module == package or module.startswith(package + "."):
            return ALLOWED[package]
    raise AssertionError(f"{module} is in no layer")


def is_ours(name: str) -> bool:
    return name.split(".")[0] in OURS


def allowed(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes) or \
        any(prefix.startswith(name + ".") for prefix in prefixes)   # `from ingest import kit` names a parent


def violations(root: Path) -> list[str]:
    found = []
    for package in OURS:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(path, root)
            prefixes = rule_for(module)
            for line, base, names in imports_of(path, module):
                # `from ingest import case` imports ingest.case: judge each name taken from a package
                for name in [base] if not allowed(base, prefixes) or not names else [f"{base}.{n}" for n in names]:
                    if name == "ingest.cli" or name.startswith("ingest.cli."):
                        found.append(f"{path.relative_to(root)}:{line} imports ingest.cli")
                    elif is_ours(name) and not allowed(name, prefixes):
                        found.append(f"{path.relative_to(root)}:{line} imports {name}")
    return found


def test_the_code_base_keeps_its_layers():
    assert violations(ROOT) == []


@pytest.mark.parametrize("where, line, expected", [
    ("adapters/telegram.py", "from ingest.pipeline import run", "adapters/telegram.py:1 imports ingest.pipeline"),
    ("adapters/telegram.py", "from ingest import case", "adapters/telegram.py:1 imports ingest.case"),
    ("store/extra.py", "from ingest.kit import registry", "store/extra.py:1 imports ingest.kit"),
    ("ingest/kit/extra.py", "import store.index", "ingest/kit/extra.py:1 imports store.index"),
    ("ingest/features/extra.py", "from adapters.files import walk", "ingest/features/extra.py:1 imports adapters.files"),
    ("ingest/features/extra.py", "from ingest import cli", "ingest/features/extra.py:1 imports ingest.cli"),
    ("adapters/phone/extra.py", "from ...store import index", "adapters/phone/extra.py:1 imports store"),
])
def test_a_forbidden_import_is_caught(tmp_path, where, line, expected):
    for package in OURS:
        (tmp_path / package).mkdir()
    (tmp_path / "ingest" / "kit").mkdir()
    (tmp_path / "ingest" / "features").mkdir()
    (tmp_path / "adapters" / "phone").mkdir()
    (tmp_path / where).write_text(line + "\n")
    assert expected in violations(tmp_path)


def test_allowed_imports_pass(tmp_path):
    for package in ("ingest", "ingest/kit", "ingest/model", "adapters", "store"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
    (tmp_path / "adapters" / "telegram.py").write_text(
        "import json\nfrom ingest.kit.adapter import Parser\nfrom ingest.model.records import Record\n")
    (tmp_path / "store" / "extra.py").write_text("from ingest.model.records import Digest\n")
    (tmp_path / "ingest" / "kit" / "extra.py").write_text("from ingest.model import errors\n")
    assert violations(tmp_path) == []
