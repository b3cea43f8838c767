"""Real SWE-bench gold patches: how many would the suspicion rules flag (false positives)?

A gold patch is the upstream fix, so every flag on one is a false positive: under
`reward_policy="strict"` it would score a correct fix 0. For each instance of each dataset
file, the gold patch goes through `suspicion.flags` with the paths the grader restores anyway
(the test patch's files and the task's protected globs, `protection.matches`), and the script
prints how many are flagged, by which rule, with every flagged line, plus the median time per
patch against the median time of `diffs.parse` alone on the same patch (the baseline: the
rules' cost over reading the patch at all). Needs no engine and no repository.

    python bench/suspicion_gold.py --dataset SWE-bench_Verified.parquet --dataset SWE-bench_Lite.parquet
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path

from _timing import machine_line

from swe_env.grading import diffs, protection, suspicion
from swe_env.importers import swebench


def _timed(call, repeats: int = 3) -> float:
    """The fastest of `repeats` calls, in seconds (a patch is parsed in well under a millisecond)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def measure(path: Path) -> tuple[int, list[tuple[str, list[str]]], list[float], list[float]]:
    """(instances, [(instance id, flags)], seconds per flags call, seconds per parse) for one dataset file."""
    records = swebench.read_records(path)
    flagged: list[tuple[str, list[str]]] = []
    rules_times: list[float] = []
    parse_times: list[float] = []
    for record in records:
        task = swebench.instance_to_task(record, where=str(path))
        patch = task.gold_patch or ""
        test_paths = set(diffs.touched_paths(task.tests.test_patch))

        def restored_anyway(candidate: str, test_paths: set[str] = test_paths, globs: list[str] = task.tests.protected) -> bool:
            return candidate in test_paths or protection.matches(candidate, globs)

        found = suspicion.flags(patch, restored_anyway=restored_anyway)
        if found:
            flagged.append((task.id, found))
        rules_times.append(_timed(lambda patch=patch, restored_anyway=restored_anyway: suspicion.flags(patch, restored_anyway=restored_anyway)))
        parse_times.append(_timed(lambda patch=patch: diffs.parse(patch)))
    return len(records), flagged, rules_times, parse_times


def _reason(flag: str) -> str:
    """The rule's reason in a flag `path:line: reason: text` or `path: reason`."""
    parts = flag.split(": ")
    return parts[1] if len(parts) > 1 else flag


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", required=True, type=Path, help="a SWE-bench file (repeatable)")
    args = parser.parse_args()
    print(machine_line())
    for path in args.dataset:
        total, flagged, rules_times, parse_times = measure(path)
        reasons = Counter(_reason(flag) for _, found in flagged for flag in found)
        rules_ms, parse_ms = statistics.median(rules_times) * 1e3, statistics.median(parse_times) * 1e3
        print(f"\n{path.name}: {len(flagged)} of {total} gold patches flagged")
        for reason, count in reasons.most_common():
            print(f"  {count:4d}  {reason}")
        for instance_id, found in flagged:
            for flag in found:
                print(f"    {instance_id}  {flag}")
        print(f"  median per patch: flags {rules_ms:.3f} ms, diffs.parse alone {parse_ms:.3f} ms (ratio {rules_ms / parse_ms:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
