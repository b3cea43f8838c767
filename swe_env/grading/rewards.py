"""Rewards for RL from a grading report: the execution modes, SWE-RL's patch similarity, the combined mode.

Pure: a report and two patches in, a number out (`compute_reward`); `unresolved_reward` is the one reward of a
patch that did not resolve the task whatever else is known (refused, or withheld by the strict policy).
"""

from __future__ import annotations

import difflib
import itertools
import re
from typing import Literal

from . import diffs, testlogs
from .verdict import GradingReport

RewardMode = Literal["binary", "signed", "fraction", "similarity", "execution_then_similarity"]
"""How a grading becomes a reward (`compute_reward` has the formulas); `EnvConfig.reward_mode` and the grader's."""


def unresolved_reward(mode: RewardMode) -> float:
    """What an unresolved patch scores in the execution modes: -1.0 with `signed`, else 0.0."""
    return -1.0 if mode == "signed" else 0.0


def compute_reward(report: GradingReport, mode: RewardMode, patch: str | diffs.Patch | None = None, gold_patch: str | None = None) -> float:
    """Reward for RL from a report (and, for the similarity modes, the agent's and the gold patch).

    - `binary` (default): 1.0 if resolved, else 0.0.
    - `signed`: 1.0 if resolved, else -1.0.
    - `fraction`: the fraction of listed tests that passed; 0.0 if a PASS_TO_PASS test failed.
    - `similarity`: `patch_similarity(patch, gold_patch)`, in [0, 1], whatever the tests say
      (SWE-RL's reward without its format penalty).
    - `execution_then_similarity`: 1.0 if resolved, else
      `SIMILARITY_WEIGHT * patch_similarity(patch, gold_patch)`, in [0, 0.5]: execution
      decides first and similarity only ranks the unresolved, so every resolved patch
      outranks every unresolved one by at least 0.5, even an unresolved patch identical to
      the gold one (CWM's SWE RL instead gives a fixed bonus past a similarity threshold).

    The similarity modes score 0.0 without a gold patch. The grader gives 0.0 in every mode
    when grading could not decide (`errors.grading_is_infrastructure`: test_patch_failed, infra_error).
    """
    if mode in ("binary", "signed"):
        return 1.0 if report.resolved else unresolved_reward(mode)
    if mode == "similarity":
        return patch_similarity(patch, gold_patch)
    if mode == "execution_then_similarity":
        return 1.0 if report.resolved else SIMILARITY_WEIGHT * patch_similarity(patch, gold_patch)
    total = len(report.test_results)
    if total == 0 or report.tests_status["PASS_TO_PASS"].failure:
        return 0.0
    return sum(status == testlogs.PASSED for status in report.test_results.values()) / total


# ---------------------------------------------------------------- patch similarity (reward modes)

SIMILARITY_WEIGHT = 0.5
"""`execution_then_similarity`: an unresolved patch's reward is this times its similarity."""
SIMILARITY_MAX_CHARS = 200_000
"""Characters of one file's change that are compared; each side is cut to this many."""
SIMILARITY_BUDGET = 30_000_000
"""Element comparisons one sequence match may make (1-3 s of pure Python) before a cheaper measure is used instead."""


def patch_similarity(patch: str | diffs.Patch | None, gold_patch: str | None) -> float:
    """How close a patch is to the gold patch, in [0, 1]: SWE-RL's per-file sequence-match ratio.

    Both patches are split per file (git or plain unified diffs); a file's change is its hunks
    (the `@@` lines and the lines under them, stripped), after a `rename from A to B` line
    for a rename; header lines (index, modes) are left out and binary files ignored. The
    score is the mean, over the union of the files either patch changes, of
    `difflib.SequenceMatcher(None, agent_change, gold_change, autojunk=False).ratio()`; a
    file only one patch changes scores 0, and so does a patch pair with no change at all.

    Cost: each change is cut to SIMILARITY_MAX_CHARS characters, and a match that would make
    more than SIMILARITY_BUDGET comparisons (counted before each step of difflib's search) is
    replaced by the same ratio over lines, and that, past the same budget, by the ratio of
    the two multisets of lines (`quick_ratio` over lines, linear). A size limit alone does
    not bound the character match: on repetitive text it is worse than quadratic (about 50 s
    for 2,000 characters of "+\\n" against "+x\\n" on a busy 2-core machine), while code
    changes up to about 8,000 characters a side stay within the budget and get the exact
    character ratio. The budget counts comparisons, not time, so the reward of a patch pair
    never depends on the machine's load.
    """
    agent = patch.derived("similarity", lambda read: _file_changes(read.text)) if isinstance(patch, diffs.Patch) else _file_changes(patch or "")
    gold = _file_changes(gold_patch or "")
    paths = agent.keys() | gold.keys()
    if not paths:
        return 0.0
    return sum(_change_ratio(agent.get(p, ""), gold.get(p, "")) for p in paths) / len(paths)


def _file_changes(patch: str) -> dict[str, str]:
    """Path (the new one; the old one for a deletion) -> that file's change, as `patch_similarity` compares it."""
    sections: list[list[str]] = []
    old_left = new_left = 0
    has_hunk = False
    for line in patch.splitlines():
        if old_left > 0 or new_left > 0:
            tag = line[:1]
            if tag in (" ", "-", "+", "\\") or not line:  # an empty line: a context line whose space was lost
                old_left -= tag in (" ", "-", "")
                new_left -= tag in (" ", "+", "")
                sections[-1].append(line)
                continue
            old_left = new_left = 0  # a hunk shorter than its header says: this line is not part of it
        if line.startswith("diff --git ") or (line.startswith("--- ") and (not sections or has_hunk)):
            sections.append([line])
            has_hunk = False
        elif sections:
            sections[-1].append(line)
            if match := _SIMILARITY_HUNK.match(line):
                old_left, new_left, has_hunk = int(match[1] or 1), int(match[2] or 1), True
    changes: dict[str, str] = {}
    for section in sections:
        try:
            files = diffs.parse("\n".join(section) + "\n")
        except diffs.DiffError:
            continue
        if len(files) != 1 or files[0].binary or not files[0].path:
            continue
        file = files[0]
        first_hunk = next((n for n, line in enumerate(section) if line.startswith("@@")), len(section))
        renamed = file.old_path and file.new_path and file.old_path != file.new_path
        text = (f"rename from {file.old_path} to {file.new_path}\n" if renamed else "") + "\n".join(section[first_hunk:])
        changes[file.path] = (changes[file.path] + "\n" + text.strip()) if file.path in changes else text.strip()
    return changes


_SIMILARITY_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


class _OverBudget(Exception):
    pass


class _BudgetedMatcher(difflib.SequenceMatcher):
    """SequenceMatcher (autojunk off) that raises _OverBudget before its comparisons pass a budget."""

    def __init__(self, a, b, budget: int):
        super().__init__(None, a, b, autojunk=False)
        self.budget = budget
        # Scanning a[i] in find_longest_match visits every position of b that holds the same element.
        # b2j is made by set_seq2 (typeshed does not declare it).
        self.cost = list(itertools.accumulate((len(self.b2j.get(x, ())) for x in a), initial=0))  # type: ignore[attr-defined]

    def find_longest_match(self, alo=0, ahi=None, blo=0, bhi=None):
        ahi = len(self.a) if ahi is None else ahi
        self.budget -= self.cost[ahi] - self.cost[alo]
        if self.budget < 0:
            raise _OverBudget
        return super().find_longest_match(alo, ahi, blo, bhi)


def _change_ratio(agent: str, gold: str) -> float:
    if not agent or not gold:
        return 0.0
    agent, gold = agent[:SIMILARITY_MAX_CHARS], gold[:SIMILARITY_MAX_CHARS]
    for a, b in ((agent, gold), (agent.splitlines(), gold.splitlines())):
        try:
            return _BudgetedMatcher(a, b, SIMILARITY_BUDGET).ratio()
        except _OverBudget:
            continue
    return difflib.SequenceMatcher(None, agent.splitlines(), gold.splitlines(), autojunk=False).quick_ratio()
