"""The deployment files agree with the code they deploy.

docker-compose.yml itself is validated with `docker compose config`; these
checks catch drift that a schema cannot see.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from workflows import search_attributes


def test_compose_bootstrap_creates_every_search_attribute(repo_root: Path) -> None:
    compose = (repo_root / "docker-compose.yml").read_text()
    loop = re.search(r"for name in ([\w ]+); do", compose)
    assert loop is not None, "the temporal-bootstrap service lost its search attribute loop"
    assert set(loop.group(1).split()) == {key.name for key in search_attributes.ALL}
    # Every one of them is a Keyword, as the workflows write them.
    assert {key.indexed_value_type for key in search_attributes.ALL} == {
        search_attributes.OWNER.indexed_value_type
    }
    assert "--type Keyword" in compose


def test_compose_runs_the_production_commands(repo_root: Path) -> None:
    compose = (repo_root / "docker-compose.yml").read_text()
    for command in (
        '["deskpilot", "api"',
        '["deskpilot", "smtp"',
        '["deskpilot", "worker"]',
        '"db", "upgrade"]',
    ):
        assert command in compose


def test_image_copies_every_package_the_wheel_ships(repo_root: Path) -> None:
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    shipped = set(wheel["packages"]) | set(wheel.get("force-include", {}))
    dockerfile = (repo_root / "Dockerfile").read_text()
    copied = {
        match.group(1).rstrip("/") for match in re.finditer(r"^COPY (\S+) ", dockerfile, re.M)
    }
    assert shipped <= copied, f"Dockerfile does not copy {sorted(shipped - copied)}"
