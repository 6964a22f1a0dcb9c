"""Wall and CPU seconds per part of a command (build, TCO solve, tie-break, baselines, plan), so a benchmark can say
where the time goes without re-implementing the command (benchmarks/solve_command.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Stopwatch:
    """Seconds per named part; a part timed twice adds up."""

    wall_s: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)  # this process's CPU time (a shared machine inflates wall)

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall_s[name] = self.wall_s.get(name, 0.0) + time.perf_counter() - wall0
            self.cpu_s[name] = self.cpu_s.get(name, 0.0) + time.process_time() - cpu0
