"""`Run`: what every worker of one synthesis run shares (the learned suite, the record, the claimed task count,
the pairing of validated bugs, the timings), and the lock that guards its mutable parts."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..data.task import Task
from . import combine
from . import model as model_method
from .candidates import Candidate
from .learning import Suite
from .options import SynthConfig
from .record import State
from .writer import Snapshots


@dataclass
class Run:
    """What every worker of one run shares; `lock` guards the mutable parts."""

    config: SynthConfig
    suite: Suite
    state: State
    git_dir: str
    sha: str
    name: str
    base: Task
    """The clean tree's task: the environment and test command every written task gets."""
    model: model_method.ModelMethod | None
    taken: int
    """Tasks written or being written: a worker claims one before it writes."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    pairing: combine.Pairing[tuple[Candidate, list[str]]] | None = None
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    snapshots: Snapshots | None = None
    """The clean tree packed once; every task's bundle is written from it."""

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the block's seconds to `timings[phase]`."""
        started = time.monotonic()
        try:
            yield
        finally:
            with self.lock:
                self.timings[phase] += time.monotonic() - started

    def claim(self) -> bool:
        """Take one of the tasks still wanted (under `lock`), or say none is left."""
        if self.taken >= self.config.max_tasks:
            return False
        self.taken += 1
        return True

    def release(self) -> None:
        self.taken -= 1
