"""The order candidates are tried in: by their expected yield per second, learned as the run goes."""

from __future__ import annotations

import random

from .candidates import Candidate


class CandidateQueue:
    """Candidates in the order of their expected yield per second, learned as the run goes.

    Methods take turns (each method's share stays, so every method makes tasks). Within the method,
    candidates are grouped by kind; each pick draws, for every kind, a success rate from
    Beta(validated + 1, rejected + 1) and divides it by the kind's mean seconds per candidate (the
    run's mean until the kind has one): the kind with the best draw gives its next candidate
    (Thompson sampling: kinds that pay are used more, untried ones are still tried). Within a kind
    the planned (seeded, shuffled) order stands. Combined candidates go first. At most `limit`
    candidates are handed out (combined ones not counted). Not thread-safe: used under the run's lock.
    """

    def __init__(self, candidates: list[Candidate], limit: int, seed: int = 0):
        self.groups: dict[tuple[str, str], list[Candidate]] = {}
        for candidate in candidates:
            self.groups.setdefault((candidate.method, candidate.kind), []).append(candidate)
        self.front: list[Candidate] = []
        self.stats: dict[tuple[str, str], list[float]] = {}
        """(method, kind) -> [validated, tried, seconds]."""
        self.limit, self.handed = limit, 0
        self.turn = 0
        self.planned = min(limit, len(candidates))
        self.rng = random.Random(seed)

    def first(self, candidate: Candidate) -> None:
        self.front.append(candidate)
        self.planned += 1

    def pop(self) -> Candidate | None:
        if self.front:
            return self.front.pop(0)
        live = [key for key, group in self.groups.items() if group]
        if not live or self.handed >= self.limit:
            return None
        tried = sum(stat[1] for stat in self.stats.values())
        overall = sum(stat[2] for stat in self.stats.values()) / tried if tried else 1.0

        def draw(key: tuple[str, str]) -> float:
            validated, count, seconds = self.stats.get(key, [0.0, 0.0, 0.0])
            cost = seconds / count if count else overall
            return self.rng.betavariate(validated + 1, count - validated + 1) / max(cost, 0.01)

        methods = sorted({method for method, _kind in live})
        method = methods[self.turn % len(methods)]
        self.turn += 1
        self.handed += 1
        return self.groups[max((key for key in live if key[0] == method), key=draw)].pop(0)

    def done(self, candidate: Candidate, validated: bool, seconds: float) -> None:
        stat = self.stats.setdefault((candidate.method, candidate.kind), [0.0, 0.0, 0.0])
        stat[0] += validated
        stat[1] += 1
        stat[2] += seconds
