"""What the installed runner reads (`runner_probe`), asked once per image: the probe's own container and the
answers kept in memory and under `$SWE_ENV_CACHE/runner-facts/`.

The probe scripts and the parsing of their answers are pure (`runner_probe`); this module runs them in a fresh
container from the task's image, with no patch, so what they see is the project's own doing.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from ..build.repos import cache_dir
from ..data.task import Task
from ..runtime.sandbox import Sandbox, SandboxError
from . import runner_probe
from .prepare import GRADER_DIR

PROBE_OUTPUT = 8 * 1024 * 1024
"""Bytes of each answer of the runner probe kept (`Grader.runner_facts`); a longer answer is not used."""


class RunnerFactsCache:
    """The answers of the runner probe, one per image, command and workdir (`_facts_key`), asked at most once at a
    time per key (the others wait for its answer); a grader holds one (its locks do not travel)."""

    def __init__(self) -> None:
        self._facts: dict[str, runner_probe.RunnerFacts] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def ask(self, task: Task, image: str, labels: dict[str, str], note: Callable[[str], None] = lambda _message: None) -> runner_probe.RunnerFacts:
        """What the installed runner reads, asked once per image, command and workdir in a fresh container
        from `image` (no patch, carrying `labels`), then kept in memory and in a file of the host cache.

        Empty when the task says not to ask (`tests.ask_runner`). A probe that fails is noted and not
        kept: the grading goes on with the task's own lists, and the next one asks again."""
        if not task.tests.ask_runner:
            return runner_probe.RunnerFacts()
        key = _facts_key(image, task)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one probe per image at a time; the others wait for its answer
            known = self._facts.get(key)
            if known is None:
                known = _read_facts(key)
            if known is None:
                known = _probe(task, image, labels)
                note("asked the installed runner what it reads" + (f" (not all of it: {'; '.join(known.notes)})" if known.notes else ""))
                if not known.notes:
                    _write_facts(key, known)
            if not known.notes:
                self._facts[key] = known
        return known


def _probe(task: Task, image: str, labels: dict[str, str]) -> runner_probe.RunnerFacts:
    notes: list[str] = []
    workdir = task.environment.workdir
    python = 'cd / && P=$(command -v python || command -v python3) && exec "$P" -I -c "$0" "$1"'

    def answer(result, what: str) -> str:
        if result.exit_code != 0 or result.cut:
            notes.append(f"{what} failed (exit {result.exit_code}): {result.output.strip()[-200:]}")
            return ""
        return result.stdout

    try:
        with Sandbox.for_task(task, image, "probe", labels=labels, user=None) as box:
            importable = answer(
                box.exec(["/bin/sh", "-c", python, runner_probe.IMPORTABLE_PROBE, workdir], timeout=120, max_output=PROBE_OUTPUT),
                "listing importable modules",
            )
            configs = answer(
                box.exec(
                    ["/bin/sh", "-c", python, runner_probe.CONFIG_PROBE, json.dumps(runner_probe.CONFIG_CANDIDATES)],
                    timeout=600,
                    max_output=PROBE_OUTPUT,
                ),
                "asking pytest for its config files",
            )
            # From the workdir, as the test command imports them (cwd and the image's PYTHONPATH on sys.path).
            here = f'cd {shlex.quote(workdir)} && P=$(command -v python || command -v python3) && exec "$P" -c "$0" "$@"'
            located = answer(
                box.exec(["/bin/sh", "-c", here, runner_probe.RUNNER_PROBE, *runner_probe.RUNNER_MODULES], timeout=120, max_output=PROBE_OUTPUT),
                "locating the runner's packages",
            )
            site = f"{GRADER_DIR}/probe-{uuid.uuid4().hex}"
            box.write_file(f"{site}/sitecustomize.py", runner_probe.IMPORTS_SITE.encode())
            # The task's command as written, with no patch: what it imports is the project's own doing.
            script = (
                f'export PYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}" SWE_ENV_PROBE_OUT={site}/tried\n'
                f"( {task.tests.command}\n) >/dev/null 2>&1 </dev/null\ncat {site}/tried"
            )
            tried = answer(
                box.exec(["/bin/bash", "-c", script], timeout=task.limits.grading_timeout, max_output=PROBE_OUTPUT), "a clean run of the test command"
            )
    except SandboxError as exc:
        return runner_probe.RunnerFacts(notes=(f"the probe's container failed: {str(exc)[:200]}",))
    return runner_probe.RunnerFacts(
        config_names=runner_probe.config_names(configs),
        importable=runner_probe.module_names(importable),
        failed_imports=runner_probe.module_names(tried),
        runner_code=runner_probe.runner_paths(located) if located else None,
        notes=tuple(notes),
    )


def _facts_key(image: str, task: Task) -> str:
    """What a probe's answer depends on: the image (tags are content hashes), the command, the workdir and the probe."""
    probe = [
        runner_probe.CONFIG_PROBE,
        runner_probe.IMPORTABLE_PROBE,
        runner_probe.IMPORTS_SITE,
        runner_probe.RUNNER_PROBE,
        *runner_probe.RUNNER_MODULES,
        json.dumps(runner_probe.CONFIG_CANDIDATES),
    ]
    text = "\0".join([image, task.tests.command, task.environment.workdir, *probe])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _facts_path(key: str) -> Path:
    return cache_dir() / "runner-facts" / f"{key}.json"


def _read_facts(key: str) -> runner_probe.RunnerFacts | None:
    try:
        with open(_facts_path(key), "rb") as handle:
            return runner_probe.RunnerFacts.from_json(handle.read(PROBE_OUTPUT * 3).decode())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_facts(key: str, facts: runner_probe.RunnerFacts) -> None:
    path = _facts_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        temporary.write_text(facts.to_json())
        temporary.replace(path)  # whole or not at all, for gradings in other processes
    except OSError:
        pass  # a cache that cannot be written only costs the next process one more probe
