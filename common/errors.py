"""Error types the CLI turns into one line and an exit code (never a traceback).

Exit codes are part of the CLI contract (README "Exit codes"):
0 ok, 1 infeasible, 2 invalid input, 3 no plan within the time limit, 4 internal error (a bug: one line, the
traceback with `--debug` or HETPLACE_DEBUG=1), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_INFEASIBLE = 1
EXIT_INVALID_INPUT = 2
EXIT_NO_PLAN = 3
EXIT_INTERNAL_ERROR = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a process stopped by Ctrl-C


@dataclass
class InputProblem:
    """One thing wrong with an input: where (field path) and what."""

    field_path: str
    message: str

    def render(self) -> str:
        return f"{self.field_path}: {self.message}" if self.field_path else self.message


@dataclass
class InputError(Exception):
    """Invalid user input, tied to the file it came from and the offending field paths."""

    source: str
    problems: list[InputProblem] = field(default_factory=list)

    @classmethod
    def single(cls, source: str, field_path: str, message: str) -> InputError:
        return cls(source, [InputProblem(field_path, message)])

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return f"{self.source}: {self.problems[0].render()}"
        lines = [f"{self.source}: {len(self.problems)} problems"]
        lines += [f"  - {p.render()}" for p in self.problems]
        return "\n".join(lines)
