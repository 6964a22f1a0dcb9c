"""Shared fixtures: the bundled catalog, the small scenario solved once per session, the small scenario's optimum
derived by hand, helpers to write YAML inputs into a temp dir, and the Hypothesis profiles."""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, settings

from hetplace.catalogs.loader import Catalog, bundled_dir, load_catalog
from hetplace.common.errors import InputError
from hetplace.common.io import parse_model
from hetplace.problems.loader import ResolvedScenario, bundled_problems_dir, load_scenario

if TYPE_CHECKING:
    from hetplace.optimizer.solve import SolveOutcome
    from hetplace.problems.plan import Plan

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
SMALL = FIXTURES / "scenarios" / "small-agent.yaml"

# Hypothesis: "ci" is derandomized (examples follow from each test's source, not a clock or a database), so a failure
# on a fresh clone shows again on a rerun and in any checkout; print_blob prints the @reproduce_failure line.
# "dev" (the default) keeps random search and the local example database. Settings a test names in its own
# @settings (max_examples, deadline, ...) override the profile's; the rest come from the profile. Both profiles
# derive from Hypothesis's "default", not from the current settings (Hypothesis loads a "ci" profile of its own when
# it detects CI), so HYPOTHESIS_PROFILE=dev gives the plain defaults even with CI set.
settings.register_profile(
    "ci",
    parent=settings.get_profile("default"),
    derandomize=True,
    database=None,
    print_blob=True,
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow],
)
# Both suppress the wall-clock "too slow" health check: these machines are shared, and a slow draw is not a defect.
settings.register_profile(
    "dev", parent=settings.get_profile("default"), print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE")
    or ("ci" if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes") else "dev")
)

# The small scenario's optimum, USD/year — derived by hand from the catalog and the scenario defaults, never read off
# solver output. The optimal fleet (the backends agree on it, tests/test_optimizer.py, and the plan lists it) is
# 2 owned L4s, in use (sunk: energy and hosting only), serving embedding and retrieval, and 4 bought Xeon 6980P
# sockets (2 dual-socket nodes) serving the tool and both LLM calls; the 2 idle owned L4s cost nothing.
# Inputs: catalogs/devices/l4.yaml tdp_w 72; catalogs/devices/xeon-6980p.yaml tdp_w 500, capex_usd 12,460; scenario
# economics defaults (README "Scenario defaults"): 0.08 USD/kWh, PUE 1.3, 184 USD/kW-month, 4-year amortisation,
# average load 0.7 of TDP.
#   IT load  2 × 72 W + 4 × 500 W                                   = 2.144 kW
#   capex    4 × 12,460 USD / 4 years                               = 12,460.000000
#   energy   2.144 kW × 0.7 × 1.3 × 8,760 h × 0.08 USD/kWh          =  1,367.288832
#   hosting  2.144 kW × 184 USD/kW-month × 12 months                =  4,733.952000
#   total                                                           = 18,561.240832
SMALL_FLEET = {"l4": (2, 0, 0), "xeon-6980p": (0, 4, 0)}  # device: (owned used, bought, rented)
SMALL_OPTIMUM_USD_PER_YEAR = 4 * 12_460 / 4 + 2.144 * 0.7 * 1.3 * 8760 * 0.08 + 2.144 * 184 * 12


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def small_resolved() -> ResolvedScenario:
    """tests/fixtures/scenarios/small-agent.yaml, loaded once. Treat as read-only: copy before changing."""
    return load_scenario(SMALL)


@pytest.fixture(scope="session")
def small_plans(small_resolved: ResolvedScenario) -> dict[str, SolveOutcome]:
    """The small scenario solved once per session by every backend (HiGHS with its homogeneous baselines), without
    the tie-break toward speed: the cost solve's co-located plan (18,561.24 USD/yr, 7.92 s), whose shape the
    hand-derived expectations of the export, screen, report and simulation tests describe. The tie-broken plan
    (same TCO, disaggregated, 6.45 s) is tests/test_tiebreak.py's. Read-only: a test that changes a plan works on
    a copy (`plan.model_copy(deep=True)` or a model_dump)."""
    from hetplace.optimizer.solve import solve_scenario  # imported here: the solvers load only for tests that solve

    backends = ("highs", "cbc", "cpsat")
    return {b: solve_scenario(small_resolved, b, baselines=(b == "highs"), tiebreak=False) for b in backends}


def solved_plan(outcome: SolveOutcome) -> Plan:
    """The outcome's plan; fails the test (with status and diagnosis) where the solve found none."""
    assert outcome.plan is not None, (outcome.status, outcome.diagnosis)
    return outcome.plan


def present(value: T | None) -> T:
    """`value`, failing the test where it is None: narrows an optional result before a test uses it."""
    assert value is not None
    return value


def read_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def small_at(tmp: Path, rate: float, sla: float, percentile: float | None = None) -> dict[str, Any]:
    """The small scenario's document with its workflow at this arrival rate and SLA (written into `tmp`, which the
    returned scenario points to); callers edit it further and write it into `tmp`."""
    tmp.mkdir(parents=True, exist_ok=True)
    wf = read_yaml(SMALL.parent / "small-agent-workflow.yaml")
    wf["arrival_rate_rps"] = rate
    wf["sla"] = {"e2e_latency_s": sla, **({"percentile": percentile} if percentile is not None else {})}
    write_yaml(tmp / "w.yaml", wf)
    sc = read_yaml(SMALL)
    sc["workflows"] = [{"path": "w.yaml"}]
    return sc


def load_case(case: dict[str, Any]) -> ResolvedScenario:
    """A generated {"workflow", "scenario"} pair (property tests) written to a temp dir and loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        write_yaml(Path(tmp) / "w.yaml", case["workflow"])
        return load_scenario(write_yaml(Path(tmp) / "s.yaml", case["scenario"]))


def one_llm_call(rate: float, sla: float, hardware: dict[str, Any], prompt_tokens: int = 1000) -> dict[str, Any]:
    """A {"workflow", "scenario"} case (for `load_case`): one Llama-3.1-8B call of `prompt_tokens` in, 100 out, at
    this rate and SLA, on `hardware` — small enough to brute-force."""
    ask = {"id": "ask", "kind": "llm", "model": "llama-3.1-8b", "prompt_tokens": prompt_tokens, "output_tokens": 100}
    return {
        "workflow": {
            "id": "tiny",
            "name": "tiny",
            "description": "one LLM call",
            "arrival_rate_rps": rate,
            "sla": {"e2e_latency_s": sla},
            "steps": [ask],
        },
        "scenario": {"id": "tiny", "name": "tiny", "workflows": [{"path": "w.yaml"}], "hardware": hardware},
    }


@pytest.fixture
def h100() -> dict[str, Any]:
    """A fresh, valid device mapping to break in tests."""
    return copy.deepcopy(read_yaml(bundled_dir("devices") / "h100-sxm.yaml"))


@pytest.fixture
def llama8b() -> dict[str, Any]:
    return copy.deepcopy(read_yaml(bundled_dir("models") / "llama-3.1-8b.yaml"))


@pytest.fixture
def tiny_workflow() -> dict[str, Any]:
    """A minimal valid workflow: llm -> (tool, retrieval) -> llm, using bundled model ids."""
    return {
        "id": "tiny",
        "name": "Tiny",
        "description": "test workflow",
        "arrival_rate_rps": 2.0,
        "sla": {"e2e_latency_s": 10.0},
        "steps": [
            {"id": "plan", "kind": "llm", "model": "llama-3.1-8b", "prompt_tokens": 500, "output_tokens": 100},
            {"id": "run", "kind": "tool", "tool": "shell", "latency_s": 1.5, "cpu_s": 0.5, "after": ["plan"]},
            {"id": "look", "kind": "retrieval", "corpus_vectors": 1000000, "dim": 1024, "top_k": 10, "after": ["plan"]},
            {
                "id": "answer",
                "kind": "llm",
                "model": "llama-3.1-8b",
                "prompt_tokens": 900,
                "cached_prefix_tokens": 500,
                "output_tokens": 200,
                "after": ["run", "look"],
            },
        ],
    }


@pytest.fixture
def tiny_scenario(tmp_path: Path, tiny_workflow: dict[str, Any]) -> dict[str, Any]:
    """A valid scenario dict referring to `tiny.yaml` written beside it in tmp_path."""
    write_yaml(tmp_path / "tiny.yaml", tiny_workflow)
    return {
        "id": "tiny-scenario",
        "name": "Tiny scenario",
        "workflows": [{"path": "tiny.yaml"}],
        "hardware": {
            "owned": [{"device": "h100-sxm", "count": 8}],
            "purchasable": [{"device": "h100-sxm", "max_count": 16}],
        },
    }


def schema_problems(model_cls: type, data: dict[str, Any], source: str) -> list[tuple[str, str]]:
    """(field path, message) of every problem `data` has against `model_cls`; fails if it is valid."""
    with pytest.raises(InputError) as exc:
        parse_model(model_cls, data, source)
    assert exc.value.source == source
    return [(p.field_path, p.message) for p in exc.value.problems]


def bundled_yaml_files() -> list[Path]:
    root = bundled_problems_dir()
    files = sorted((root / "workflows").glob("*.yaml")) + sorted((root / "scenarios").glob("*.yaml"))
    for kind in ("devices", "models", "calibrations"):
        files += sorted(bundled_dir(kind).glob("*.yaml"))
    return files
