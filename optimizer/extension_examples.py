"""Example `extra_constraints` functions (see optimizer/extensions.py and README "Extra constraints").

Name one in a scenario as `extra_constraints: "hetplace.optimizer.extension_examples:rented_share_at_most_30pct"`,
or copy this file beside your scenario and name it as `"my_rules.py:rented_share_at_most_30pct"`.
"""

from __future__ import annotations

from hetplace.optimizer.extensions import (
    accelerator_ids,
    family_devices,
    family_ids,
    fleet_terms,
    replica_terms,
)
from hetplace.optimizer.formulation import Formulation
from hetplace.optimizer.linear import LinearModel

RENTED_SHARE = 0.3
CPU_DEVICES_MAX = 2
LLM_PHASES = ("prefill", "decode", "colocated")


def no_renting(model: LinearModel, f: Formulation) -> None:
    """Own or buy everything: no rented devices."""
    model.add_row("user:no_renting", fleet_terms(f, sources=("rented",)), "<=", 0.0)


def rented_share_at_most_30pct(model: LinearModel, f: Formulation) -> None:
    """At most 30 % of the accelerators in the fleet are rented: rented ≤ 0.3 · (owned in use + bought + rented),
    i.e. 0.7 · rented − 0.3 · (owned in use + bought) ≤ 0."""
    gpus = accelerator_ids(f)
    row = {i: (1 - RENTED_SHARE) * c for i, c in fleet_terms(f, gpus, ("rented",)).items()}
    for i, c in fleet_terms(f, gpus, ("owned", "bought")).items():
        row[i] = row.get(i, 0.0) - RENTED_SHARE * c
    model.add_row("user:rented_share", row, "<=", 0.0)


def cpu_devices_at_most_2(model: LinearModel, f: Formulation) -> None:
    """At most 2 CPU sockets in the fleet (e.g. room for one dual-socket server)."""
    cpus = [d for d in f.offers if d not in accelerator_ids(f)]
    model.add_row("user:cpu_devices", fleet_terms(f, cpus), "<=", float(CPU_DEVICES_MAX))


def two_device_types_per_llm(model: LinearModel, f: Formulation) -> None:
    """Resilience: every LLM is served on at least 2 device types (a replica on each), so losing one type of
    hardware leaves the model running. A binary u[family, device] may be 1 only if the family has a replica on that
    device (u ≤ replicas there); the u of a family sum to at least 2."""
    llms = {p.family for p in f.pools if p.phase in LLM_PHASES}  # embed and encoder pools name models too
    for family in family_ids(f):
        if family not in llms:
            continue
        used: dict[str, int] = {}
        for device in family_devices(f, family):
            u = model.add_var(f"user:uses[{family},{device}]", 0, 1, integer=True)
            replicas = replica_terms(f, family, device)
            model.add_row(f"user:uses[{family},{device}]", {u: 1.0, **{i: -c for i, c in replicas.items()}}, "<=", 0)
            used[device] = u
        model.add_row(f"user:two_types[{family}]", dict.fromkeys(used.values(), 1.0), ">=", 2.0)
