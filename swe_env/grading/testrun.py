"""Running the hidden tests in a grader's container and reading what they wrote.

The test command runs as written (`Sandbox.exec_to_end`): its output is one stream to the host, and its runner
(`runners`) writes machine-readable results to the other, through a path that is that stream (pytest a JUnit XML
report, Django and sympy the grader's recorder), sealed by the per-grading key (`seal`), so they leave the
container as they are written; when the command ends every process left in the container is stopped, and nothing
the run leaves in the container is read but the results files of a runner that writes its own (Harbor's reward
file, through the engine, after that stop). Meanwhile a `runtime.disk.DiskWatch` checks the container's disk
every `DISK_CHECK_SECONDS` and, past `limits.disk`, stops every process in it.
"""

from __future__ import annotations

import shlex
import time
import uuid

from ..data.task import Task
from ..runtime.disk import DISK_CHECK_SECONDS, DiskWatch
from ..runtime.sandbox import Sandbox
from ..runtime.streams import Framed, FramedRun
from . import native, prepare, runners, seal, testlogs
from .runner_probe import RunnerFacts
from .verdict import OUTPUT_LIMIT, GradingReport, ReportSource

_RESULTS_FD = 3
"""The test run's descriptor for its results stream (the exec's stderr; the output goes to its stdout)."""
_RESULTS_MARK = "\0results\0"
"""Stands for the results path in a runner's environment values (the path is known to the shell only)."""

Results = testlogs.JUnitResults | testlogs.RecordedResults


def run_tests(
    box: Sandbox,
    task: Task,
    runner: runners.Runner,
    workspace: str,
    key: bytes,
    patched: list[str],
    changed_lines: dict[str, list[tuple[int, int]]] | None = None,
    facts: RunnerFacts = RunnerFacts(),
) -> tuple[FramedRun, float, DiskWatch]:
    """Run the test command as written (`Sandbox.exec_to_end`: once it has ended, nothing it
    started runs on) under a `runtime.disk.DiskWatch`: the run, its seconds and the watch (what it found).

    Its output (stdout and stderr) is the run's first stream; the sealed hook writes its records
    to the second, through `/proc/<this shell>/fd/3`: a path, so it reaches pytest under tox
    too, which closes inherited descriptors; the command itself does not inherit the descriptor.
    The key waits at an unguessable path in the workspace; the hook reads and unlinks it."""
    key_path = f"{workspace}/{uuid.uuid4().hex}.key"
    workdir = task.environment.workdir.rstrip("/")
    key_file = seal.key_file(
        key,
        [f"{workdir}/{path}" for path in patched],
        runner.runner_is_repo(patched, facts),
        {f"{workdir}/{path}": ranges for path, ranges in (changed_lines or {}).items()},
        [f"{workdir}/{path}" for path in runner.runner_places(patched, facts)],
    )
    # One archive and one step for the start-up module, the plugin, the native seal and the key (`Files.write_many`).
    box.files.write_many({**runner.files(workspace), key_path: key_file})
    prepare.close_private_shell(box)
    results = f"/proc/$$/fd/{_RESULTS_FD}"
    exports = "".join(
        f"export {name}={_with_results(value, results)}\n" for name, value in runner.environment(_RESULTS_MARK, key_path, workspace).items()
    )
    prelude = runner.prelude(workspace)
    # The runner's settings go through the environment so the task's command stays as written.
    script = (
        f"mkdir -p {shlex.quote(workspace)} && exec {_RESULTS_FD}>&2 2>&1 </dev/null\n"
        + exports
        + (prelude + "\n" if prelude else "")
        + "(\n"
        + task.tests.command
        + f"\n) {_RESULTS_FD}>&-"
    )
    run_started = time.monotonic()
    with DiskWatch(box.disk, DISK_CHECK_SECONDS) as watch:
        run = box.exec_to_end(
            ["/bin/bash", "-c", script], timeout=task.limits.grading_timeout, max_stdout=OUTPUT_LIMIT, max_stderr=runners.RESULTS_LIMIT
        )
    return run, time.monotonic() - run_started, watch


def read_results(
    box: Sandbox, task: Task, runner: runners.Runner, workspace: str, stream: Framed, key: bytes, report: GradingReport, exit_code: int
) -> tuple[Results | None, ReportSource, str | None]:
    """The runner's results (from the run's sealed results stream, or the files of a runner that
    writes its own, read through the engine), where the statuses come from
    (`GradingReport.report_source`), and why none were read; the stream's tamper flags go to
    `report.tampering`."""
    try:
        if runner.streams_results:
            if not stream.complete or stream.cut:  # a cut stream is not believed (nor parsed)
                raise runners.ResultsError(
                    f"the results were larger than {runners.RESULTS_LIMIT} bytes" if stream.cut else "the results stream did not end with the run"
                )
            sealed = seal.read(stream.data, key, runner.name)
            report.tampering, report.seal = sealed.flags, sealed.seal
            if sealed.seal == "python":  # never silently: the log says why the native seal was not used
                built = native.shared_object()
                why = "; ".join(sealed.notes) or built.reason or "the start-up module did not load it"
                report.log.append(f"sealed by the weaker pure-Python hook, not the native one: {why}")
            if sealed.results is None:
                raise runners.ResultsError(sealed.error or "no sealed results")
            if exit_code > 128:  # an abort or a kill after the end record: an abnormal end is never believed
                raise runners.ResultsError(f"the test command was ended by signal {exit_code - 128}")
            return sealed.results, runner.source, None
        else:
            found = _read_results_files(box, runner.results_paths(workspace))
        return runner.read_results(found), runner.source, None
    except (FileNotFoundError, IsADirectoryError, runners.ResultsError) as exc:
        if task.tests.log_fallback:
            return None, "log", None
        # Without results nothing is believed: the output is the agent's code talking.
        detail = str(exc) if isinstance(exc, runners.ResultsError) else type(exc).__name__
        return None, "none", f"no readable {runner.results_label} was written ({detail})"
    except OSError as exc:  # a link or a device where the file should be: put there by the code under test
        return None, "none", f"no readable {runner.results_label} was written ({exc})"


def _read_results_files(box: Sandbox, paths: list[str]) -> list[tuple[str, bytes]]:
    """Each of the runner's results files that exists, in order: (its path, its bytes), read
    through the engine (the code under test may have replaced any binary in the container).

    FileNotFoundError when none does; ResultsError for one larger than RESULTS_LIMIT."""
    found = []
    for path in paths:
        try:
            content = box.read_from_engine(path, max_bytes=runners.RESULTS_LIMIT)
        except FileNotFoundError:
            continue
        if content.truncated:
            raise runners.ResultsError(f"{path} is larger than {runners.RESULTS_LIMIT} bytes")
        found.append((path, content.data))
    if not found:
        raise FileNotFoundError(paths[0] if paths else "results")
    return found


def _with_results(value: str, results: str) -> str:
    """`value` as one shell word, `_RESULTS_MARK` in it replaced by `results` (expanded by the shell)."""
    return f'"{results}"'.join(shlex.quote(part) for part in value.split(_RESULTS_MARK))
