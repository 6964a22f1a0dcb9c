"""The wheel ships the code and every bundled YAML file (catalogs, workflows, default scenario)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_wheel_contains_modules_and_data(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("hetplace-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("cli.py", "common/io.py", "catalogs/loader.py", "problems/loader.py", "optimizer/plan.py"):
        assert module in names, module
    repo_yaml = {p.relative_to(REPO).as_posix() for d in ("catalogs", "problems") for p in (REPO / d).rglob("*.yaml")}
    assert repo_yaml, "no bundled YAML found in the repo"
    assert repo_yaml <= names, sorted(repo_yaml - names)
    assert "problems/scenarios/default.yaml" in names
    assert not any(n.startswith("tests/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "hetplace = cli:app" in zipfile.ZipFile(wheel).read(entry_points).decode()
