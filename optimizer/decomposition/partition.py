"""Split a min-TCO model into model-family blocks and the master (linking) part, from the model's own rows.

A family's block is every variable of its plan — replicas and in-use flags of its pools' configs, route shares,
KV-dtype picks — plus every variable that only ever shares rows with them and with nothing of the master (pool
latencies L, route durations D). The master keeps the fleet variables (own, buy nodes, rent), the step starts S and
anything else. A row whose variables all belong to one family is that family's; every other row links (fleet
balance, SLA and DAG edges, power, budgets, user extension rows).

Deriving the split from the rows, not from row names, keeps it right when the formulation gains rows or variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hetplace.optimizer.formulation import Formulation
from hetplace.optimizer.linear import LinearModel
from hetplace.optimizer.pools import DISAGGREGATED


@dataclass
class Block:
    """One family's variables (global indices, in order) and its own rows (indices into the model's rows)."""

    family: str
    variables: list[int]
    rows: list[int] = field(default_factory=list)


@dataclass
class Partition:
    blocks: list[Block]
    master_vars: list[int]
    linking_rows: list[int]  # every row that is not a block's own
    owner: dict[int, int]  # variable -> block index (master variables absent)


def partition(f: Formulation, model: LinearModel | None = None, by_route: bool = False) -> Partition:
    """The family blocks of `model` (default f.model; a copy of it with more rows and variables works too).
    `by_route`: one block per route of a family instead (the split of traffic between routes then links)."""
    m = model or f.model
    owner: dict[int, int] = {}
    names: list[str] = []
    index: dict[str, int] = {}

    def block_of(family: str) -> int:
        if family not in index:
            index[family] = len(names)
            names.append(family)
        return index[family]

    for pool in f.pools:
        b = block_of(f"{pool.family}/{pool.route}" if by_route else pool.family)
        for c in pool.configs:
            v = f.config_vars[c.key]
            owner[v.replicas] = owner[v.in_use] = b
    for family, shares in f.share_vars.items():
        for route, i in shares.items():
            owner[i] = block_of(f"{family}/{route}" if by_route else family)
    for family, picks in f.kv_vars.items():
        for i in picks.values():
            owner[i] = block_of(f"{family}/{DISAGGREGATED}" if by_route else family)
    master: set[int] = set(f.start_vars.values())
    for fv in f.fleet_vars.values():
        master.update(i for i in (fv.own_devices, fv.buy_nodes, fv.rent_devices) if i is not None)
    changed = True
    while changed:  # spread block membership through rows that touch one block and nothing of the master
        changed = False
        for r in m.rows:
            touched = {owner[i] for i in r.coeffs if i in owner}
            if len(touched) != 1 or any(i in master for i in r.coeffs):
                continue
            (b,) = touched
            for i in r.coeffs:
                if i not in owner:
                    owner[i] = b
                    changed = True
    blocks = [Block(name, []) for name in names]
    for i in sorted(owner):
        blocks[owner[i]].variables.append(i)
    linking: list[int] = []
    for k, r in enumerate(m.rows):
        found = {owner.get(i, -1) for i in r.coeffs}
        if len(found) == 1 and -1 not in found:
            blocks[found.pop()].rows.append(k)
        else:
            linking.append(k)
    master_vars = [i for i in range(len(m.vars)) if i not in owner]
    return Partition(blocks, master_vars, linking, owner)
