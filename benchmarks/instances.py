"""Seeded benchmark instances: scenarios of S / M / L / XL ≈ 10 / 100 / 500 / 1000 workflow steps.

Each instance mixes the four bundled workflow shapes (chat, coding agent, web agent, computer use). Every generated
workflow serves its own fine-tuned copy of the bundled model it calls (same architecture, its own weights, so its
own pools), which is how a company ends up with dozens of model pools; arrival rates and SLAs vary around the
bundled ones. The hardware offer is every catalog device: the default scenario's owned older GPUs, new
accelerators and CPUs to buy, cloud devices to rent, with availability scaled to the instance.

    python -m benchmarks.instances XL --seed 0 --out /tmp/xl     # writes /tmp/xl/scenario.yaml (+ workflows, models)
    hetplace solve /tmp/xl/scenario.yaml

Deterministic: the same size and seed give byte-identical files.
"""

from __future__ import annotations

import argparse
import copy
import random
from pathlib import Path

import yaml

from hetplace.catalogs.loader import bundled_dir
from hetplace.common.io import atomic_write_text
from hetplace.problems.loader import bundled_problems_dir

SIZES = {"S": 10, "M": 100, "L": 500, "XL": 1000}  # target workflow steps
TEMPLATES = {"chat": 0.4, "coding-agent": 0.2, "web-agent": 0.25, "computer-use": 0.15}  # share of workflows
MODEL_VARIANTS_PER_BASE = {"S": 1, "M": 2, "L": 8, "XL": 14}  # fine-tunes per bundled LLM (≈ 7 bases)


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _dump(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def generate(size: str, seed: int, out_dir: Path) -> Path:
    """Write the instance under `out_dir` and return the scenario path."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}")
    rng = random.Random(f"{size}-{seed}")
    templates = {name: _yaml(bundled_problems_dir() / "workflows" / f"{name}.yaml") for name in TEMPLATES}
    default = _yaml(bundled_problems_dir() / "scenarios" / "default.yaml")
    variants = MODEL_VARIANTS_PER_BASE[size]
    model_files: dict[str, str] = {}
    workflows, steps = [], 0
    index = 0
    while steps < SIZES[size]:
        name = rng.choices(list(TEMPLATES), weights=list(TEMPLATES.values()))[0]
        wf = copy.deepcopy(templates[name])
        wf["id"] = f"{name}-{index:04d}"
        wf["name"] = f"{templates[name]['name']} #{index}"
        wf["arrival_rate_rps"] = round(wf["arrival_rate_rps"] * rng.uniform(0.02, 0.2), 4)
        wf["sla"]["e2e_latency_s"] = round(wf["sla"]["e2e_latency_s"] * rng.uniform(0.9, 1.6), 2)
        for step in wf["steps"]:
            if step["kind"] == "llm":
                base = step["model"]
                variant = f"{base}-ft{rng.randrange(variants):02d}"
                step["model"] = variant
                model_files.setdefault(variant, f"models/{variant}.yaml")
        workflows.append(wf)
        steps += len(wf["steps"])
        index += 1
    for variant, rel in sorted(model_files.items()):
        base = variant.rsplit("-ft", 1)[0]
        model = _yaml(bundled_dir("models") / f"{base}.yaml")
        model["id"] = variant
        model["name"] = f"{model.get('name', base)} (fine-tune {variant.rsplit('-ft', 1)[1]})"
        _dump(out_dir / rel, model)
    for wf in workflows:
        _dump(out_dir / "workflows" / f"{wf['id']}.yaml", wf)
    scale = max(1.0, steps / 40)  # the default scenario has ~28 steps at full bundled rates
    hardware = copy.deepcopy(default["hardware"])
    for group in ("purchasable", "rentable"):
        for entry in hardware[group]:
            entry["max_count"] = int(entry["max_count"] * scale)
    scenario = {
        "id": f"bench-{size.lower()}-{seed}",
        "name": f"Benchmark instance {size} (seed {seed})",
        "description": f"{len(workflows)} workflows, {steps} steps, {len(model_files)} fine-tuned LLMs (generated)",
        "workflows": [{"path": f"workflows/{wf['id']}.yaml"} for wf in workflows],
        "hardware": hardware,
        "catalog": {"models": sorted(model_files.values())},
        "calibration": default.get("calibration"),
        "economics": default["economics"],
        "limits": {**default["limits"], "power_cap_kw": default["limits"]["power_cap_kw"] * scale},
    }
    path = out_dir / "scenario.yaml"
    _dump(path, scenario)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", choices=list(SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(generate(args.size, args.seed, args.out))


if __name__ == "__main__":
    main()
