"""mypy with a ratchet: no errors at all in the strict folders, and elsewhere never more than `mypy-ratchet.json`.

mypy runs twice: on the `hetplace` package (pyproject's [tool.mypy]) and on the test and benchmark folders, which
are not part of the package.

Usage: `python .ci/mypy_ratchet.py` (CI) or `python .ci/mypy_ratchet.py --shrink` after fixing errors, which
rewrites the ratchet file with the lower counts. The file may only shrink: --shrink refuses to raise a count.
Exit 0 ok; 1 more errors than allowed, or fewer (shrink the file); 2 mypy itself failed to run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RATCHET = Path(__file__).with_name("mypy-ratchet.json")
STRICT_FOLDERS = ("costmodels/", "optimizer/")  # zero errors, no entries allowed in the ratchet file
ERROR_LINE = re.compile(r"^(?:src/hetplace/)?(?P<path>[^:]+\.py):\d+: error: ")


MYPY_RUNS = ([], ["tests", "benchmarks"])  # arguments after `mypy`: the configured package, then the other folders


def error_counts() -> tuple[Counter[str], str]:
    counts: Counter[str] = Counter()
    output = []
    for args in MYPY_RUNS:
        run = subprocess.run([sys.executable, "-m", "mypy", *args], cwd=REPO, capture_output=True, text=True)
        found = Counter(m["path"] for line in run.stdout.splitlines() if (m := ERROR_LINE.match(line)))
        if run.returncode not in (0, 1) or (run.returncode == 1 and not found):
            print(run.stdout, run.stderr, sep="\n")
            sys.exit(2)
        counts.update(found)
        output.append(run.stdout)
    return counts, "\n".join(output)


def main(argv: list[str]) -> int:
    counts, output = error_counts()
    allowed: dict[str, int] = json.loads(RATCHET.read_text()) if RATCHET.exists() else {}
    bad_entries = [path for path in allowed if path.startswith(STRICT_FOLDERS)]
    over = {path: n for path, n in counts.items() if n > allowed.get(path, 0)}
    for path in bad_entries:
        print(f"{RATCHET.name}: {path} is in a strict folder ({', '.join(STRICT_FOLDERS)}) and may not be listed")
    for path, n in sorted(over.items()):
        print(f"mypy: {path} has {n} errors, {allowed.get(path, 0)} allowed")
    if over or bad_entries:
        print(output)
        return 1
    shrunk = {path: counts[path] for path in allowed if counts[path] > 0}
    if shrunk != allowed:
        if "--shrink" not in argv:  # a loose ratchet would let errors creep back in: it must follow every fix
            print(f"mypy: fewer errors than {RATCHET.name} allows; run `python .ci/mypy_ratchet.py --shrink`")
            return 1
        RATCHET.write_text(json.dumps(dict(sorted(shrunk.items())), indent=2) + "\n")
        print(f"{RATCHET.name} shrunk to {sum(shrunk.values())} errors in {len(shrunk)} files")
    print(f"mypy ratchet ok: {sum(counts.values())} errors allowed-for in {len(counts)} files, none in strict folders")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
