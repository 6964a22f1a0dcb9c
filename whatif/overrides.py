"""Change one value of a scenario document: generic paths and the ready-made procurement questions.

A PATH addresses a value in the scenario mapping: dotted keys, with `[N]` or `[key=value]` to pick a list item —
`limits.power_cap_kw`, `hardware.purchasable[device=h100-sxm].capex_usd`, `workflows[workflow=chat].e2e_latency_s`.

Ready-made questions read their base value from the scenario (or the catalog when the scenario does not set it):

  price:DEVICE      multiply the device's purchase price and rental price by the value (0.7 = 30 % cheaper)
  demand:WF | *     multiply a workflow's (or every workflow's) arrival rate
  sla:WF | *        multiply a workflow's (or every workflow's) end-to-end SLA
  owned:DEVICE      set how many of the device are owned (0 = retire them all)
  offer:DEVICE      set how many of the device may be bought (0 = not offered; adds it if absent)
  power_cap         set limits.power_cap_kw
"""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

from hetplace.problems.loader import ResolvedScenario, purchase_price_usd, rental_usd_per_hour

QUESTIONS = ("price", "demand", "sla", "owned", "offer", "power_cap")

_SEGMENT = re.compile(r"^(?P<key>[A-Za-z_][\w-]*)(?:\[(?P<sel>[^\]]+)\])?$")


class OverrideError(ValueError):
    """An override that does not fit the scenario (unknown path, no matching item, bad value)."""


def parse_value(text: str) -> Any:
    """YAML scalar semantics: numbers, booleans, null and strings, as in the scenario file."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OverrideError(f"cannot read value {text!r}: {exc}") from exc


def _select(items: list, selector: str, where: str) -> int:
    if selector.isdigit():
        index = int(selector)
        if index >= len(items):
            raise OverrideError(f"{where}: index {index} out of range ({len(items)} items)")
        return index
    key, eq, wanted = selector.partition("=")
    if not eq:
        raise OverrideError(f"{where}: selector [{selector}] must be [N] or [key=value]")
    for i, item in enumerate(items):
        if isinstance(item, dict) and str(item.get(key)) == wanted:
            return i
    raise OverrideError(f"{where}: no item with {key}={wanted}")


def set_path(data: dict, path: str, value: Any) -> None:
    """Set `path` in the nested mapping `data` in place. Missing final keys are created (the scenario schema then
    rejects unknown ones); missing list items are errors."""
    segments = path.split(".")
    node: Any = data
    for n, segment in enumerate(segments):
        m = _SEGMENT.match(segment)
        where = ".".join(segments[: n + 1])
        if m is None:
            raise OverrideError(f"bad path segment {segment!r} in {path!r}")
        key, selector = m.group("key"), m.group("sel")
        last = n == len(segments) - 1
        if not isinstance(node, dict):
            raise OverrideError(f"{where}: {'.'.join(segments[:n]) or 'scenario'} is not a mapping")
        if selector is None:
            if last:
                node[key] = value
                return
            node = node.setdefault(key, {})
            continue
        items = node.get(key)
        if not isinstance(items, list):
            raise OverrideError(f"{where}: {key} is not a list")
        index = _select(items, selector, where)
        if last:
            items[index] = value
            return
        node = items[index]


def _entry(items: list[dict], field: str, wanted: str) -> dict | None:
    return next((e for e in items if e.get(field) == wanted), None)


def apply_question(data: dict, base: ResolvedScenario, question: str, target: str | None, value: Any) -> None:
    """Apply one ready-made question (see module docstring) to the mapping `data` in place."""
    hw = data.setdefault("hardware", {})
    if question == "power_cap":
        data.setdefault("limits", {})["power_cap_kw"] = value
        return
    if target is None:
        example = "*" if question in ("demand", "sla") else "h100-sxm"
        raise OverrideError(f"{question}: name a target, e.g. {question}:{example}")
    number = _number(question, value)
    if question == "price":
        _scale_price(hw, base, target, number)
    elif question in ("demand", "sla"):
        _scale_workflows(data, base, question, target, number)
    elif question in ("owned", "offer"):
        if number != int(number) or number < 0:
            raise OverrideError(f"{question}:{target}: count must be a whole number ≥ 0, got {value!r}")
        if target not in base.catalog.devices:
            raise OverrideError(f"{question}:{target}: unknown device (see `hetplace catalog list devices`)")
        group, field = ("owned", "count") if question == "owned" else ("purchasable", "max_count")
        items = hw.setdefault(group, [])
        entry = _entry(items, "device", target)
        if int(number) == 0:
            hw[group] = [e for e in items if e is not entry]
        elif entry is None:
            items.append({"device": target, field: int(number)})
        else:
            entry[field] = int(number)
    else:
        raise OverrideError(f"unknown question {question!r}; choose from {', '.join(QUESTIONS)}")


def _number(question: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OverrideError(f"{question}: value must be a number, got {value!r}")
    if value < 0:
        raise OverrideError(f"{question}: value must be ≥ 0, got {value!r}")
    return float(value)


def _scale_price(hw: dict, base: ResolvedScenario, device: str, factor: float) -> None:
    buy = _entry(hw.get("purchasable", []), "device", device)
    rent = _entry(hw.get("rentable", []), "device", device)
    if buy is None and rent is None:
        raise OverrideError(f"price:{device}: the scenario neither sells nor rents {device}")
    base_hw = base.scenario.hardware
    if buy is not None:
        offer = next(e for e in base_hw.purchasable if e.device == device)
        buy["capex_usd"] = _scaled(purchase_price_usd(offer, base.catalog), factor, device, "purchase")
    if rent is not None:
        rental = next(e for e in base_hw.rentable if e.device == device)
        rent["usd_per_hour"] = _scaled(rental_usd_per_hour(rental, base.catalog), factor, device, "rental")


def _scaled(price: float | None, factor: float, device: str, kind: str) -> float:
    if price is None:
        raise OverrideError(f"price:{device}: no {kind} price in the scenario or the catalog to scale")
    return price * factor


def _scale_workflows(data: dict, base: ResolvedScenario, question: str, target: str, factor: float) -> None:
    if factor <= 0:
        raise OverrideError(f"{question}:{target}: factor must be > 0")
    ids = [wf.id for wf in base.workflows]
    if target != "*" and target not in ids:
        raise OverrideError(f"{question}:{target}: no workflow {target!r} in the scenario ({', '.join(ids)})")
    entries = data.get("workflows", [])
    for i, wf in enumerate(base.workflows):
        if target in ("*", wf.id):
            field = "arrival_rate_rps" if question == "demand" else "e2e_latency_s"
            now = wf.arrival_rate_rps if question == "demand" else wf.sla.e2e_latency_s
            entries[i][field] = now * factor


def apply_override(data: dict, base: ResolvedScenario, spec: str, value: Any) -> dict:
    """A copy of `data` with one override applied: `spec` is a question (`price:h100-sxm`) or a PATH."""
    out = copy.deepcopy(data)
    head, colon, target = spec.partition(":")
    if head in QUESTIONS and (colon or head == "power_cap"):
        apply_question(out, base, head, target or None, value)
    else:
        set_path(out, spec, value)
    return out
