"""Packaging: one `hetplace` import package in the wheel and the sdist, nothing else installed at the top level."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, SMALL, SMALL_OPTIMUM_USD_PER_YEAR

TOP_LEVEL_FOLDERS = (
    "common", "catalogs", "costmodels", "problems", "optimizer", "whatif", "reports", "export", "simulate",
)


def _build(kind: str, source: Path, out: Path) -> Path:
    """Build a wheel (pip wheel, from a checkout or an sdist) or an sdist (hatchling) into `out`."""
    if kind == "sdist":
        subprocess.run(
            [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(out)],
            cwd=source,
            check=True,
            capture_output=True,
        )
        (built,) = out.glob("hetplace-*.tar.gz")
        return built
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True,
    )
    (built,) = out.glob("hetplace-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build("wheel", REPO, tmp_path_factory.mktemp("wheel"))


def test_wheel_holds_only_the_hetplace_package(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"hetplace", "hetplace-0.1.0.dist-info"}, top
    for module in ("cli.py", "common/io.py", "catalogs/loader.py", "problems/loader.py", "optimizer/solve.py"):
        assert f"hetplace/{module}" in names, module
    shipped = {
        p.relative_to(REPO).as_posix()
        for d in TOP_LEVEL_FOLDERS
        for p in (REPO / d).rglob("*")
        if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts
    }
    assert len(shipped) >= 80, "modules or bundled YAML files went missing from the repo"
    assert {f"hetplace/{name}" for name in shipped} <= names, sorted(shipped - {n[9:] for n in names})
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "hetplace = hetplace.cli:app" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_sdist_builds_the_same_wheel(wheel: Path, tmp_path: Path) -> None:
    sdist = _build("sdist", REPO, tmp_path / "sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="tar")
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    for needed in (".ci/run", "scripts/screenshot_report.py", "benchmarks/run.py", "tests/conftest.py"):
        assert (unpacked / needed).is_file(), f"the sdist lacks {needed}: it could not run its own checks"
    from_sdist = _build("wheel", unpacked, tmp_path / "wheel")
    assert set(zipfile.ZipFile(from_sdist).namelist()) == set(zipfile.ZipFile(wheel).namelist())


def test_installed_wheel_exposes_only_hetplace_and_solves(wheel: Path, tmp_path: Path) -> None:
    """A real install into a fresh venv (dependencies borrowed from this interpreter, not re-downloaded)."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
    )
    work = tmp_path / "elsewhere"  # not the repo, so its folders are not on sys.path via the working directory
    work.mkdir()
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    where = subprocess.run(
        [str(python), "-c", "import hetplace.problems.plan as m; print(m.__file__)"],
        cwd=work,
        env=clean_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(env_dir) in where.stdout, where.stdout
    for name in ("common", "optimizer", "cli", "tests", "benchmarks", *TOP_LEVEL_FOLDERS):
        probe = subprocess.run([str(python), "-c", f"import {name}"], cwd=work, env=clean_env, capture_output=True)
        assert probe.returncode != 0, f"`import {name}` resolved after installing hetplace"
    # The bundled data ships: the default scenario, its four workflows and the catalogs load from the install.
    bundled = subprocess.run(
        [
            str(python),
            "-c",
            "from hetplace.problems.loader import default_scenario_path, load_scenario\n"
            "path = default_scenario_path()\n"
            "resolved = load_scenario(path)\n"
            "print(path, resolved.scenario.id, len(resolved.workflows), len(resolved.catalog.devices))",
        ],
        cwd=work,
        env=clean_env,
        capture_output=True,
        text=True,
        check=True,
    )
    path, scenario_id, workflows, devices = bundled.stdout.split()
    assert path.startswith(str(env_dir)) and path.endswith("default.yaml"), path
    assert (scenario_id, int(workflows)) == ("default", 4) and int(devices) >= 16
    # The installed entry point solves. The small scenario (a file outside the install) proves this as well as the
    # default would, in about a second rather than half a minute (at 5 % gap, 2-core machine), and its optimum is
    # known.
    solve = subprocess.run(
        [str(env_dir / "bin" / "hetplace"), "solve", str(SMALL), "--no-baselines", "--json"],
        cwd=work,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert solve.returncode == 0, solve.stderr[-2000:]
    plan = json.loads(solve.stdout)
    assert plan["scenario"] == "small-agent"
    assert plan["tco"]["total_usd_per_year"] == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-9)
