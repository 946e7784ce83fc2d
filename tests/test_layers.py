"""The layering drawn in README's Architecture section, enforced: the import-linter contracts in
pyproject.toml hold for the code as it is, they fail on a wrong-way import, and every package
of ours is inside them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
# Not product code: the tests and the benchmarks may import whatever they measure.
OUTSIDE_THE_PRODUCT = {"tests", "bench"}
MAX_LINES = 400


def _config() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports in a fresh interpreter, so it reads the packages under `cwd`."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(no_cache=True, no_logo=True))",
        ],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy_of_the_code(tmp_path: Path) -> Path:
    for package in _config()["root_packages"]:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "worker.py", tmp_path / "worker.py")
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    return tmp_path


def test_every_contract_is_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = _config()["contracts"]
    assert f"Contracts: {len(contracts)} kept, 0 broken." in result.stdout


def test_every_package_of_ours_is_in_the_contracts() -> None:
    # A folder of Python files at the top is a package, with or without __init__.py.
    packages = {p.parent.name for p in ROOT.glob("*/*.py") if not p.parent.name.startswith(".")}
    assert packages - OUTSIDE_THE_PRODUCT == set(_config()["root_packages"])


@pytest.mark.parametrize(
    ("module", "wrong_import", "reported"),
    [
        ("kernel/settings.py", "import models.db", "kernel is not allowed to import models"),
        (
            "models/event.py",
            "import domain.plans",
            "models is not allowed to import domain",
        ),
        (
            "domain/plans.py",
            "import sqlalchemy",
            "domain is not allowed to import sqlalchemy",
        ),
        (
            "workflows/contracts.py",
            "import activities.message",
            "workflows is not allowed to import activities",
        ),
        ("api/actions.py", "import activities.errors", "api is not allowed to import activities"),
        ("api/pages.py", "import api.threads", "api.pages is not allowed to import api.threads"),
        ("services/ingest.py", "import api.app", "services is not allowed to import api"),
        (
            "sandbox/gmail.py",
            "import domain.mail.threads",
            "sandbox is not allowed to import domain",
        ),
    ],
)
def test_a_wrong_way_import_breaks_a_contract(
    tmp_path: Path, module: str, wrong_import: str, reported: str
) -> None:
    code = _copy_of_the_code(tmp_path)
    target = code / module
    target.write_text(target.read_text() + f"\n{wrong_import}  # the wrong way\n")
    result = _lint(code)
    assert result.returncode == 1, result.stdout + result.stderr
    assert reported in " ".join(result.stdout.split())


def test_activities_and_workflows_stay_small() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for folder in ("activities", "workflows")
        for path in (ROOT / folder).glob("*.py")
    }
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}
