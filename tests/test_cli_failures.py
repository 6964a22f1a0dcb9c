"""Issue 15: every failure ends cleanly — output paths checked before any work (item 2), folders written as a whole
(3), files with the user's umask (4), Ctrl-C → "interrupted" and exit 130 with a sweep's finished points kept (5),
an unexpected exception as one line and exit 4 (6), square brackets printed literally (7), and options that would
be silently ignored refused with exit 2 (9)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.optimizer.backends import solve
from hetplace.optimizer.linear import LinearModel
from hetplace.optimizer.solve import formulate
from hetplace.problems.loader import default_scenario_path, load_scenario
from tests.conftest import FIXTURES, REPO, SMALL

# The README's exit codes, spelled out (hetplace.common.errors has them by name).
EXIT_INVALID_INPUT, EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED = 2, 4, 130
runner = CliRunner()
MEASUREMENTS = sorted((FIXTURES / "measurements").glob("*.csv"))[0]
MISSING = "missing-scenario.yaml"  # an input that would fail if it were read before the output check


def run(*args: str):
    return runner.invoke(app, list(args))


def flat(text: str) -> str:
    """Output without line breaks and table borders' spacing (help and errors wrap at the terminal width)."""
    return "".join(text.split())


def _default_sigint() -> None:
    """In the child before exec: SIGINT as a terminal gives it. A test runner's worker may ignore SIGINT (xdist's
    do), and an ignored signal stays ignored across exec, so the CLI would never see the Ctrl-C a test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_process(*args: str, **kwargs) -> subprocess.Popen[str]:
    """`python -m hetplace.cli ARGS` with this checkout's code, as a user would run it from a terminal."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    env.pop("HETPLACE_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "hetplace.cli", *args],
        env=env,
        text=True,
        cwd=kwargs.pop("cwd", None),
        preexec_fn=_default_sigint,
        **kwargs,
    )


# ---------------------------------------------------------------------------------------------------------- item 2


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "existing-folder.json"
    folder.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    return {"folder": folder, "file": a_file, "tmp": tmp_path}


@pytest.mark.parametrize(
    ("args", "bad", "reason"),
    [
        (["solve", MISSING, "--out", "{folder}"], "{folder}", "is a folder"),
        (["solve", MISSING, "--out", "{file}/plan.json"], "{file}/plan.json", "is a file, not a folder"),
        (["solve", MISSING, "--out", "/proc/hetplace-plan.json"], "/proc/hetplace-plan.json", "cannot write in"),
        (["solve", MISSING, "--write-model", "{file}/model.lp"], "{file}/model.lp", "is a file, not a folder"),
        (["schedule", MISSING, "--out", "{folder}"], "{folder}", "is a folder"),
        (["whatif", MISSING, "--out", "{file}"], "{file}", "is a file"),
        (["report", MISSING, "--out", "{file}"], "{file}", "is a file"),
        (["report", MISSING, "--out", "{file}/report"], "{file}/report", "is a file, not a folder"),
        (
            ["analyze", "--model", "nope", "--device", "l4", "--plot", "{file}/r.png"],
            "{file}/r.png",
            "is a file, not a folder",
        ),
        (["calibrate", MISSING, "--out", "{folder}"], "{folder}", "is a folder"),
        (["catalog", "import-hf", MISSING, "--out", "{file}/m.yaml"], "{file}/m.yaml", "is a file, not a folder"),
    ],
)
def test_bad_output_path_exits_2_before_any_input_is_read(
    paths: dict[str, Path], args: list[str], bad: str, reason: str
) -> None:
    """The scenario/model argument does not exist: the error names the output, so the output was checked first."""
    fill = {k: str(v) for k, v in paths.items()}
    result = run(*[a.format(**fill) for a in args])
    assert result.exit_code == EXIT_INVALID_INPUT, result.output
    assert bad.format(**fill) in flat(result.stderr) and reason.replace(" ", "") in flat(result.stderr)
    assert "Traceback" not in result.output
    assert sorted(p.name for p in paths["tmp"].iterdir()) == ["a-file", "existing-folder.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_folder_exits_2(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = run("solve", MISSING, "--out", str(locked / "plan.json"))
    finally:
        locked.chmod(0o700)
    assert result.exit_code == EXIT_INVALID_INPUT and "cannot write in folder" in result.stderr


def test_missing_parent_folders_are_created(tmp_path: Path) -> None:
    """The documented decision (README "Outputs"): parents are created, like `mkdir -p`."""
    out = tmp_path / "a" / "b" / "plan.json"
    result = run("solve", str(SMALL), "--no-baselines", "--json", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["tco"]["total_usd_per_year"] == pytest.approx(18_561.24, abs=0.01)


def test_report_refuses_a_folder_of_other_files(tmp_path: Path) -> None:
    """A folder output is replaced as a whole, so a folder that is not a previous report is never taken."""
    (tmp_path / "notes.txt").write_text("mine\n")
    result = run("report", str(SMALL), "--out", str(tmp_path), "--no-baselines")
    assert result.exit_code == EXIT_INVALID_INPUT and "holds other files" in " ".join(result.stderr.split())
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


# ---------------------------------------------------------------------------------------------------------- item 3


def test_rerun_into_an_old_whatif_folder_leaves_no_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "points.csv").write_text("old\n")
    (out / "tco_vs_old_axis.png").write_bytes(b"stale")
    result = run("whatif", str(SMALL), "--sweep", "price:a10g=0.5,1", "--workers", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "pareto_latency_tco.png",
        "points.csv",
        "points.json",
        "tco_vs_price_a10g.png",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["sweep"]  # no staging or old folders left beside it


def test_rerun_into_an_old_report_folder_leaves_no_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "report"
    stale = out / "old-scenario"
    stale.mkdir(parents=True)
    (stale / "fleet.png").write_bytes(b"stale")
    (out / "report.html").write_text("<p>old</p>\n")
    result = run("report", str(SMALL), "--out", str(out), "--no-baselines")
    assert result.exit_code == 0, result.output
    assert not stale.exists() and "old" not in (out / "report.html").read_text().split("<title>")[0]
    assert (out / "report.md").exists() and [p.name for p in tmp_path.iterdir()] == ["report"]


def test_failed_build_keeps_the_previous_folder_and_leaves_nothing_else(tmp_path: Path) -> None:
    from hetplace.common.output_paths import staged_folder

    out = tmp_path / "report"
    out.mkdir()
    (out / "report.html").write_text("previous\n")
    with pytest.raises(KeyboardInterrupt), staged_folder(out) as stage:
        (stage / "report.html").write_text("half\n")
        raise KeyboardInterrupt
    assert (out / "report.html").read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
    with staged_folder(tmp_path / "fresh") as stage:
        (stage / "a.txt").write_text("new\n")
    assert (tmp_path / "fresh" / "a.txt").read_text() == "new\n" and len(list(tmp_path.iterdir())) == 2


# ---------------------------------------------------------------------------------------------------------- item 4


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("umask")
def test_outputs_honour_the_umask(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    assert run("solve", str(SMALL), "--no-baselines", "--json", "--out", str(plan)).exit_code == 0
    assert stat.S_IMODE(plan.stat().st_mode) == 0o644
    out = tmp_path / "sweep"
    result = run("whatif", str(SMALL), "--sweep", "price:a10g=0.5,1", "--workers", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o644}
    os.umask(0o027)
    plan.unlink()
    assert run("solve", str(SMALL), "--no-baselines", "--json", "--out", str(plan)).exit_code == 0
    assert stat.S_IMODE(plan.stat().st_mode) == 0o640


# ---------------------------------------------------------------------------------------------------------- item 5


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """Python's own SIGINT handler (a test runner may have replaced it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("python_sigint")
def test_solver_section_defers_sigint_to_a_flag_then_raises() -> None:
    from hetplace.common.interrupts import interrupt_requested, solver_section

    reached_end_of_section = False
    with pytest.raises(KeyboardInterrupt), solver_section():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # bytecode runs: Python's handler would have raised here
            pass
        assert interrupt_requested()
        reached_end_of_section = True
    assert reached_end_of_section and not interrupt_requested()


@pytest.mark.usefixtures("python_sigint")
def test_stop_on_sigint_calls_stop_from_its_watcher_thread() -> None:
    """The stop runs on the watcher thread, woken by the wakeup fd, not on the main thread's handler."""
    from hetplace.common.interrupts import solver_section, stop_on_sigint

    stopped_on: list[str] = []
    done = threading.Event()

    def stop() -> None:
        stopped_on.append(threading.current_thread().name)
        done.set()

    with pytest.raises(KeyboardInterrupt), solver_section(), stop_on_sigint(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert done.wait(timeout=60)  # a hang guard, not a speed test
    assert stopped_on == ["sigint-watcher"]
    assert signal.set_wakeup_fd(-1) == -1  # the section put the previous (none) back


@pytest.mark.usefixtures("python_sigint")
def test_ctrl_c_stops_a_cpsat_solve_and_raises() -> None:
    """The default scenario takes CP-SAT minutes to prove; SIGINT two seconds in stops it (its own SIGINT catching is
    off, so the stop is ours and no early return is mistaken for a Ctrl-C)."""
    from hetplace.common.interrupts import interrupt_requested

    f = formulate(load_scenario(default_scenario_path()))
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            solve(f.model, "cpsat", time_limit_s=600.0, gap=0.0)
    finally:
        timer.cancel()
    assert not interrupt_requested()


def _knapsack() -> LinearModel:
    """max Σ v·x under three weight rows, 40 integer items: small, but HiGHS branches on it."""
    m = LinearModel()
    xs = [m.add_var(f"x{i}", 0, 3, True) for i in range(40)]
    for k in range(3):
        m.add_row(f"w{k}", {x: float(7 + (i * (k + 3) * 37) % 91) for i, x in enumerate(xs)}, "<=", 997.0 + k)
    for i, x in enumerate(xs):
        m.add_objective(x, -float(11 + (i * 53) % 89))
    return m


@pytest.mark.usefixtures("python_sigint")
def test_highs_stops_on_the_interrupt_flag() -> None:
    from hetplace.common.interrupts import interrupt_requested, request_interrupt

    result = solve(_knapsack(), "highs", gap=0.0)
    assert result.objective is not None and result.objective < 0
    request_interrupt()
    with pytest.raises(KeyboardInterrupt):
        solve(_knapsack(), "highs", gap=0.0)
    assert not interrupt_requested()


def _wait_for(predicate, proc: subprocess.Popen[str], what: str) -> None:
    """Poll for a marker the command leaves once the solve is under way (a hang guard, not a speed test)."""
    for _ in range(3000):
        if predicate():
            return
        assert proc.poll() is None, f"exited {proc.returncode} before {what}"
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"no {what} after 300 s")


@pytest.mark.slow
def test_ctrl_c_during_a_highs_solve_without_time_limit_exits_130(tmp_path: Path) -> None:
    """The default scenario at the default gap takes HiGHS well over a minute; the model file is written just
    before the solve starts, so SIGINT a moment after it lands inside HiGHS."""
    model, plan = tmp_path / "model.lp", tmp_path / "plan.json"
    proc = cli_process(
        "solve",
        "--no-baselines",
        "--write-model",
        str(model),
        "--out",
        str(plan),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_for(model.exists, proc, "model file")
    time.sleep(2.0)  # into h.run(): building the HiGHS arrays takes a moment after the file
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert err.strip() == "interrupted" and not plan.exists()


@pytest.mark.slow
def test_ctrl_c_during_a_sweep_keeps_the_finished_points(tmp_path: Path) -> None:
    """Point 0 (1 % of the default demand) solves in seconds, point 1 (full demand) takes minutes: interrupt it."""
    out = tmp_path / "sweep"
    proc = cli_process(
        "whatif",
        "--sweep",
        "demand:*=0.01,1",
        "--workers",
        "1",
        "--out",
        str(out),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # "point 1/2 done: optimal" is printed when point 0 is finished
        lines.append(line)
        if line.startswith("point 1/2 done"):
            break
    assert lines and lines[-1].startswith("point 1/2 done: optimal"), lines
    time.sleep(1.0)  # into point 1's solve
    proc.send_signal(signal.SIGINT)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "interrupted after 1 of 2 points" in err and err.rstrip().endswith("interrupted")
    assert "partial: 1 of 2" in stdout
    rows = json.loads((out / "points.json").read_text())
    assert [r["index"] for r in rows] == [0] and rows[0]["status"] == "optimal"
    assert json.loads((out / "partial.json").read_text()) == {
        "partial": True,
        "reason": "interrupted (Ctrl-C) before every point was solved",
        "points_finished": 1,
        "points_planned": 2,
        "missing_indices": [1],
    }
    assert (out / "points.csv").read_text().count("\n") == 2  # header + the finished point
    assert [p.name for p in tmp_path.iterdir()] == ["sweep"]


# ---------------------------------------------------------------------------------------------------------- item 6


def _boom(*_args, **_kwargs):
    raise RuntimeError("catalog exploded [at step 3]")


def test_unexpected_exception_is_one_line_and_exit_4(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HETPLACE_DEBUG", raising=False)
    monkeypatch.setattr("hetplace.cli.load_catalog", _boom)
    result = run("catalog", "list", "devices")
    assert result.exit_code == EXIT_INTERNAL_ERROR, result.output
    assert len(result.stderr.strip().splitlines()) <= 2  # one line, wrapped at most once on a narrow terminal
    assert "RuntimeError: catalog exploded [at step 3]" in " ".join(result.stderr.split())
    assert "--debug" in result.stderr and "Traceback" not in result.output and result.stdout == ""


@pytest.mark.parametrize("how", ["option", "env"])
def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setattr("hetplace.cli.load_catalog", _boom)
    if how == "env":
        monkeypatch.setenv("HETPLACE_DEBUG", "1")
        result = run("catalog", "list", "devices")
    else:
        monkeypatch.delenv("HETPLACE_DEBUG", raising=False)
        result = run("--debug", "catalog", "list", "devices")
    assert isinstance(result.exception, RuntimeError) and result.exit_code not in (0, EXIT_INTERNAL_ERROR)
    monkeypatch.delenv("HETPLACE_DEBUG", raising=False)  # and --debug does not stick to the next invocation
    assert run("catalog", "list", "devices").exit_code == EXIT_INTERNAL_ERROR


@pytest.mark.parametrize("args", [["catalog", "list", "devices"], ["catalog", "list", "devices", "--json"]])
def test_reader_leaving_early_is_not_an_error(args: list[str]) -> None:
    """`hetplace … | head`: the read end is closed before the command writes anything."""
    proc = cli_process(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""


# ---------------------------------------------------------------------------------------------------------- item 7


def test_validate_prints_the_id_pattern_literally(tmp_path: Path) -> None:
    device = (REPO / "catalogs" / "devices" / "l4.yaml").read_text().replace("id: l4", "id: L4_bad", 1)
    (tmp_path / "dev.yaml").write_text(device)
    result = run("validate", str(tmp_path / "dev.yaml"))
    assert result.exit_code == EXIT_INVALID_INPUT
    assert "'^[a-z0-9][a-z0-9._-]*$'" in result.stderr


def test_help_and_errors_keep_selectors(tmp_path: Path) -> None:
    help_text = run("whatif", "--help")
    assert help_text.exit_code == 0
    assert "hardware.purchasable[device=h100-sxm].capex_usd" in flat(help_text.output)
    bad = run("whatif", str(SMALL), "--sweep", "hardware.purchasable[device=nope].capex_usd=1,2")
    assert bad.exit_code == EXIT_INVALID_INPUT
    assert "hardware.purchasable[device=nope]: no item with device=nope" in " ".join(bad.stderr.split())


# ---------------------------------------------------------------------------------------------------------- item 9


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["analyze", "--workflow", "chat", "--plot", "{tmp}/r.png"], "--plot cannot be used with --workflow"),
        (["analyze", "--workflow", "chat", "--model", "llama-3.1-8b"], "--model cannot be used with --workflow"),
        (["analyze", "--workflow", "chat", "--device", "l4", "--tp", "2"], "--device, --tp cannot be used with"),
        (["whatif", str(SMALL), "--workers", "1", "--address", "ray://x:1"], "--address cannot be used with"),
        (
            ["calibrate", str(MEASUREMENTS), "--evaluate", "{tmp}/cal.yaml", "--out", "{tmp}/o.yaml"],
            "--out cannot be used with --evaluate",
        ),
        (["whatif", str(SMALL), "--sweep", "price:a10g=1,2", "--sweep", "price:a10g=3"], "swept twice"),
        (["whatif", str(SMALL), "--set", "price:a10g=0.5", "--sweep", "price:a10g=1,2"], "is also swept"),
        (["analyze", "--model", "llama-3.1-8b", "--device", "l4", "--plot", "{tmp}/r.svg"], "this writes .png"),
        (["solve", str(SMALL), "--out", "{tmp}/plan.txt"], "this writes .json, .yaml or .yml"),
        (["schedule", str(SMALL), "--out", "{tmp}/s.csv"], "this writes .json, .yaml or .yml"),
        (["calibrate", str(MEASUREMENTS), "--out", "{tmp}/cal.json"], "this writes .yaml or .yml"),
    ],
)
def test_silently_ignored_options_exit_2(tmp_path: Path, args: list[str], named: str) -> None:
    result = run(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == EXIT_INVALID_INPUT, result.output
    assert named in " ".join(result.stderr.split())
    assert list(tmp_path.iterdir()) == []


def test_a_tool_step_with_no_cpu_time_is_refused_at_its_field(tmp_path: Path) -> None:
    """`cpu_s: 0` used to reach the optimizer and come back as "no offered device can serve it"; the tool pool is
    sized by CPU-seconds, so it is an input error naming the workflow file and the step's field."""
    import yaml

    wf = yaml.safe_load((FIXTURES / "scenarios" / "small-agent-workflow.yaml").read_text())
    tool = next(i for i, s in enumerate(wf["steps"]) if s["kind"] == "tool")
    wf["steps"][tool]["cpu_s"] = 0
    (tmp_path / "small-agent-workflow.yaml").write_text(yaml.safe_dump(wf))
    (tmp_path / "small-agent.yaml").write_text((FIXTURES / "scenarios" / "small-agent.yaml").read_text())
    result = runner.invoke(app, ["solve", str(tmp_path / "small-agent.yaml"), "--out", str(tmp_path / "plan.json")])
    assert result.exit_code == 2, result.output
    said = " ".join(result.stderr.split())
    assert f"small-agent-workflow.yaml: steps[{tool}].cpu_s" in said and "greater than 0" in said
    assert not (tmp_path / "plan.json").exists() and "Traceback" not in result.output
