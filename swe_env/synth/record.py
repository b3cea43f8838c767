"""What a run leaves besides its tasks: `Summary` (what this run did) and `State`, the record in
`<out>/synth-state.jsonl` a re-run resumes from."""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

STATE_FILE = "synth-state.jsonl"


@dataclass
class Summary:
    """What a run did: candidates, validated, rejected by reason, per method."""

    candidates: int = 0
    validated: int = 0
    skipped: int = 0
    """Candidates decided by an earlier run."""
    rejected: Counter = field(default_factory=Counter)
    per_method: dict[str, Counter] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    """Task ids written by this run."""
    total_tasks: int = 0
    """Tasks in the out folder at the end."""
    planned: int = 0
    not_needed: int = 0
    """Candidates that passed every check after enough tasks were written (not recorded: a later run may use them)."""
    flaky_tests: list[str] = field(default_factory=list)
    """Tests whose outcome differed between the learning runs: never a task's FAIL_TO_PASS or PASS_TO_PASS."""
    passing_tests: int = 0
    """Tests that passed in every learning run (the ones a candidate can break)."""
    seconds: float = 0.0
    last: str = ""
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    """Seconds spent per phase, summed over workers: image, learn, model, apply, tests_first, tests_second, reset,
    statement, write (where a run's time goes; `bench/synthesize.py` prints them)."""

    def count(self, method: str, outcome: str) -> None:
        self.per_method.setdefault(method, Counter())[outcome] += 1


class State:
    """The run's record in `<out>/synth-state.jsonl`: one line per candidate decided, appended under a lock."""

    def __init__(self, out: Path):
        self.path = out / STATE_FILE
        self.lock = threading.Lock()
        self.decided: set[str] = set()
        self.keys: set[str] = set()
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue  # a line cut by an interrupted run
                self.decided.add(item.get("id", ""))
                if item.get("key") and item.get("task") and (out / item["task"] / "task.yaml").exists():
                    self.keys.add(item["key"])

    def record(self, item: dict) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(item) + "\n")


def tasks_in(out: Path) -> int:
    """Tasks already in the out folder (written by this run or an earlier one)."""
    return sum(1 for path in out.glob("*/task.yaml"))
