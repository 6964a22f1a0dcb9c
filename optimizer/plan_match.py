"""Does a plan belong to a scenario? The identity check `hetplace check` runs before recomputing anything.

A plan records the id of the scenario it was made for, and names devices, pools, workflows and steps. A plan
checked against another scenario (or a hand-edited one naming things that do not exist) is an input error, not a
list of violations: the recomputation would have nothing to recompute. Like the checker, this derives the pools a
scenario has from its workflows on its own (not from `optimizer.pools`).
"""

from __future__ import annotations

from hetplace.common.errors import InputProblem
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan, PoolAssignment
from hetplace.problems.schema import ConvertStep, EmbedStep, LlmStep, RetrievalStep, ToolStep

LLM_POOL_PHASES = ("prefill", "decode", "colocated")
MAX_LISTED = 12  # a plan from another scenario differs everywhere: name the first few, count the rest


def expected_pools(resolved: ResolvedScenario) -> dict[str, tuple[str, str | None]]:
    """Pool id -> (phase, model id) for every pool the scenario's workflows can have."""
    out: dict[str, tuple[str, str | None]] = {}
    for wf in resolved.workflows:
        for s in wf.steps:
            if isinstance(s, LlmStep):
                for phase in LLM_POOL_PHASES:
                    out[f"{s.model}:{phase}"] = (phase, s.model)
            elif isinstance(s, EmbedStep | ConvertStep):
                out[f"{s.kind}:{s.model}"] = (s.kind, s.model)
            elif isinstance(s, RetrievalStep):
                out[f"retrieval:{wf.id}.{s.id}"] = ("retrieval", None)
            elif isinstance(s, ToolStep):
                out["tool:cpu"] = ("tool", None)
    return out


def _device_problem(resolved: ResolvedScenario, offered: set[str], path: str, device: str) -> InputProblem | None:
    if device not in resolved.catalog.devices:
        return InputProblem(path, f"unknown device '{device}' (not in the catalog)")
    if device not in offered:
        return InputProblem(path, f"device '{device}' is not in the scenario's hardware (owned, purchasable, rentable)")
    return None


def _pool_problems(
    i: int, a: PoolAssignment, pools: dict[str, tuple[str, str | None]], resolved: ResolvedScenario
) -> list[InputProblem]:
    path = f"pools[{i}]"
    want = pools.get(a.pool)
    if want is None:
        return [InputProblem(f"{path}.pool", f"the scenario has no pool '{a.pool}'")]
    phase, model = want
    problems = []
    if a.phase.value != phase:
        problems.append(InputProblem(f"{path}.phase", f"pool '{a.pool}' is a {phase} pool, the plan says {a.phase}"))
    if model is not None and a.model != model:
        problems.append(
            InputProblem(f"{path}.model", f"pool '{a.pool}' serves model '{model}', the plan says {a.model}")
        )
    served = f"retrieval:{a.workflow}.{a.step}"
    if phase == "retrieval" and a.workflow is not None and a.step is not None and a.pool != served:
        problems.append(InputProblem(f"{path}.step", f"pool '{a.pool}' does not serve {a.workflow}.{a.step}"))
    if a.model is not None and a.model not in resolved.catalog.models:
        problems.append(InputProblem(f"{path}.model", f"unknown model '{a.model}' (not in the catalog)"))
    return problems


def plan_mismatches(resolved: ResolvedScenario, plan: Plan) -> list[InputProblem]:
    """What in the plan the scenario does not have: another scenario id, devices outside the catalog or the
    scenario's hardware, pools, workflows or steps the scenario's workflows do not define. Empty = the plan can be
    checked."""
    sc = resolved.scenario
    hw = sc.hardware
    offered = {e.device for g in (hw.owned, hw.purchasable, hw.rentable) for e in g}
    problems: list[InputProblem] = []
    if plan.scenario != sc.id:
        problems.append(
            InputProblem("scenario", f"the plan was made for scenario '{plan.scenario}', this scenario is '{sc.id}'")
        )
    for i, e in enumerate(plan.fleet):
        p = _device_problem(resolved, offered, f"fleet[{i}].device", e.device)
        if p is not None:
            problems.append(p)
    pools = expected_pools(resolved)
    for i, a in enumerate(plan.pools):
        problems.extend(_pool_problems(i, a, pools, resolved))
        p = _device_problem(resolved, offered, f"pools[{i}].device", a.device)
        if p is not None:
            problems.append(p)
    steps = {(wf.id, s.id) for wf in resolved.workflows for s in wf.steps}
    workflows = {wf.id for wf in resolved.workflows}
    for i, t in enumerate(plan.steps):
        if t.workflow not in workflows:
            problems.append(InputProblem(f"steps[{i}].workflow", f"the scenario has no workflow '{t.workflow}'"))
        elif (t.workflow, t.step) not in steps:
            problems.append(InputProblem(f"steps[{i}].step", f"workflow '{t.workflow}' has no step '{t.step}'"))
    for i, w in enumerate(plan.workflows):
        if w.workflow not in workflows:
            problems.append(InputProblem(f"workflows[{i}].workflow", f"the scenario has no workflow '{w.workflow}'"))
    if len(problems) > MAX_LISTED:
        more = len(problems) - MAX_LISTED
        problems = [*problems[:MAX_LISTED], InputProblem("", f"… and {more} more differences")]
    return problems
