"""Print mutmut's results per module: the score, and every survivor not listed as equivalent.

Run by `make mutation` after `mutmut run`. A mutant counts as killed when a test failed or timed
out on it; one that no run has reached yet is counted apart. Survivors listed in
`equivalent_mutants.txt` (with the reason they cannot change behaviour) leave the score's
denominator; every other survivor is printed by name.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

EQUIVALENTS = Path(__file__).with_name("equivalent_mutants.txt")
# "segfault" is mutmut's name for a test run ended by a signal: a mutant that makes the staging
# loop allocate without end is stopped that way (`run.py`'s memory bound); it did not pass
# unnoticed.
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
# An interrupted run leaves the rest unchecked; they count neither way until a run reaches them.
NOT_RUN = "not checked"


def read_results(mutmut: str) -> dict[str, str]:
    """{mutant name: status} as `mutmut results --all true` prints them."""
    listing = subprocess.run(
        [mutmut, "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    results = {}
    for line in listing.splitlines():
        name, separator, status = line.strip().rpartition(": ")
        if separator and "__mutmut_" in name:
            results[name] = status
    return results


def read_equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """{mutant name: reason}; lines are `name  # reason`, blank lines and comments ignored."""
    equivalents = {}
    for line in path.read_text().splitlines():
        name, _, reason = line.partition("#")
        if name.strip():
            if not reason.strip():
                raise ValueError(f"{path.name}: {name.strip()} needs a reason after '#'")
            equivalents[name.strip()] = reason.strip()
    return equivalents


def module_of(mutant: str) -> str:
    """`pkg.module.x_function__mutmut_3` (or `pkg.module.xǁClassǁmethod__mutmut_3`) -> module."""
    return mutant.split(".x", 1)[0] if ".xǁ" in mutant else mutant.rsplit(".x_", 1)[0]


def report(results: dict[str, str], equivalents: dict[str, str]) -> list[str]:
    """The lines `make mutation` prints: a score per module, then the unexplained survivors."""
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    unexplained: dict[str, list[str]] = defaultdict(list)
    for mutant, status in sorted(results.items()):
        module = module_of(mutant)
        if status in KILLED:
            by_module[module]["killed"] += 1
        elif status == NOT_RUN:
            by_module[module]["not run"] += 1
        elif mutant in equivalents:
            by_module[module]["equivalent"] += 1
        else:
            by_module[module]["alive"] += 1
            unexplained[module].append(f"{mutant}: {status}")
    lines = [f"{'module':<54} {'killed':>6} {'alive':>6} {'equiv':>6} {'not run':>7} {'score':>6}"]
    for module, counts in sorted(by_module.items()):
        judged = counts["killed"] + counts["alive"]
        score = f"{100 * counts['killed'] / judged:.1f}%" if judged else "n/a"
        lines.append(
            f"{module:<54} {counts['killed']:>6} {counts['alive']:>6} "
            f"{counts['equivalent']:>6} {counts['not run']:>7} {score:>6}"
        )
    stale = sorted(set(equivalents) - set(results))
    if stale:
        lines.append(f"{len(stale)} listed equivalent mutant(s) no longer exist: {stale[:5]}")
    for module, mutants in sorted(unexplained.items()):
        lines.append(f"{module}: {len(mutants)} survivor(s) neither killed nor listed equivalent")
        lines.extend(f"  {mutant}" for mutant in mutants)
    return lines


def main() -> int:
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    print("\n".join(report(read_results(mutmut), read_equivalents())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
