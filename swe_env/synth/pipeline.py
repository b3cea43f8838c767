"""`synthesize`: tasks from a repository at a commit, each one a validated bug. This module runs the steps (worker
threads, the queue, the summary); each step's code is in a module of its own, named below.

0. The options are checked before anything is made (`options`: `SynthConfig`, `check_names`; the model endpoint
   asked once, `connect_model`).
1. The repository's image is built (the given environment, the SWE-bench recipe of a repository
   and version, or pytest plus `pip install -e .` for a package: `options.base_task`) and the suite is
   learned once in a worker's container (`learning`): two runs (one untraced, one under our tracer,
   `traces.corpus.suite_reach`) give which tests pass in both (a test that differs is flaky and never
   decides anything) and which repository functions each passing test enters. Only those functions are mutated.
2. Candidates come from the methods (`candidates.plan`; `procedural`: AST mutations of reached functions;
   `history`: past source changes undone; `model`: a model's rewrite of a reached function,
   asked when the candidate's turn comes), interleaved by method and kind, seeded, and handed out by
   expected yield per second (`ordering`); `combine` candidates (two validated bugs of one file or folder,
   `candidates.pair`) are made as bugs validate and go first.
3. Workers each keep ONE container and reset its tree with git between candidates (`suite.Worker`). A
   candidate is applied, the tests that reach its function (the whole suite for history)
   run twice; `grading.rule.derive` makes FAIL_TO_PASS (pass -> fail) and PASS_TO_PASS from
   those runs and the learning runs, and `grading.rule.check` must accept them: the same rule
   `swe-env validate` applies. Flaky candidates and duplicates (same failing set and same
   normalised diff) are dropped (`judge`).
4. Kept candidates are written through `writer` (`make_task`: the buggy tree as the one commit of a scrubbed
   bundle, the reverse of the bug as the gold patch), with `meta` naming method, kind,
   function and source commit.

Resumable: `<out>/synth-state.jsonl` has a line per candidate decided (`record`); a re-run skips them
and counts the tasks already written towards `max_tasks`. What every worker shares is `context.Run`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..build.images import ImageBuilder
from ..runtime.sandbox import SandboxError
from . import combine
from . import model as model_method
from .candidates import pair, plan
from .context import Run
from .judge import evaluate
from .learning import learn
from .options import DEFAULT_METHODS, METHODS, SynthConfig, SynthesisError, base_task, check_names, chosen_methods, connect_model
from .ordering import CandidateQueue
from .record import STATE_FILE, State, Summary, tasks_in
from .suite import Worker
from .writer import Snapshots

__all__ = ["DEFAULT_METHODS", "METHODS", "STATE_FILE", "Summary", "SynthConfig", "SynthesisError", "base_task", "synthesize"]
_log = logging.getLogger(__name__)


def synthesize(config: SynthConfig, builder: ImageBuilder | None = None, on_progress: Callable[[Summary], None] | None = None) -> Summary:
    """Synthesize tasks into `config.out` (see the module's docstring); the summary of this run."""
    methods = chosen_methods(config)
    check_names(config, methods)  # a wrong name stops the run before anything is made
    started = time.monotonic()
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    asker, model_name = connect_model(config, methods)
    base, git_dir, name = base_task(config)
    sha = base.base_commit
    state = State(out)
    summary = Summary(total_tasks=tasks_in(out), skipped=len(state.decided))
    if summary.total_tasks >= config.max_tasks:  # a finished run again: nothing to build or learn
        summary.seconds = round(time.monotonic() - started, 1)
        return summary
    builder = builder or ImageBuilder()
    image = builder.ensure(base)
    workers = [Worker(base, image) for _ in range(config.workers)]
    run: Run | None = None
    deadline = started + config.max_minutes * 60 if config.max_minutes else float("inf")
    try:
        summary.timings["image"] += time.monotonic() - started
        mark = time.monotonic()
        workers[0].__enter__()
        suite = learn(workers[0], config, deadline)
        summary.timings["learn"] += time.monotonic() - mark
        if not suite.passing:
            last = [line.strip() for line in suite.output_tail.splitlines() if line.strip()]
            why = next((line for line in reversed(last) if line.startswith("E ")), last[-1] if last else "no output")
            raise SynthesisError(
                f"{config.repo}: no test passes at {config.commit} (twice) with `{base.tests.command}`; "
                f"nothing to break ({len(suite.runs[0])} test(s) reported; the output says: {why[:200]})"
            )
        summary.flaky_tests, summary.passing_tests = suite.flaky, len(suite.passing)
        wanted = max(0, config.max_tasks - summary.total_tasks)
        candidates = CandidateQueue(
            [c for c in plan(config, git_dir, sha, suite, model_name) if c.id not in state.decided],
            limit=config.max_candidates or 5 * wanted,
            seed=config.seed,
        )
        summary.planned = candidates.planned
        if on_progress:
            on_progress(summary)
        run = Run(
            config,
            suite,
            state,
            git_dir,
            sha,
            name,
            base,
            asker,
            taken=summary.total_tasks,
            pairing=combine.Pairing() if combine.METHOD in methods else None,
            timings=summary.timings,
            snapshots=Snapshots(git_dir, sha),
        )
        lock = run.lock

        def work(worker: Worker, index: int) -> None:
            if index:
                worker.__enter__()
            while True:
                with lock:
                    next_one = None if run.taken >= config.max_tasks or time.monotonic() > deadline else candidates.pop()
                    if next_one is None:
                        return
                    candidate = next_one
                began = time.monotonic()
                try:
                    outcome, item = evaluate(run, worker, candidate)
                except (SandboxError, OSError) as exc:  # the container or the engine: ours, and this worker stops
                    outcome, item = "infra_error", {"error": f"{type(exc).__name__}: {exc}"[:300]}
                except Exception as exc:  # noqa: BLE001 - a fault of ours with this one candidate: counted, and the next one goes on
                    outcome, item = "internal_error", {"error": f"{type(exc).__name__}: {exc}"[:300]}
                    _log.warning("synthesis: candidate %s (%s/%s): %s", candidate.id, candidate.method, candidate.kind, item["error"])
                with lock:
                    candidates.done(candidate, outcome == "validated", time.monotonic() - began)
                    summary.candidates += 1
                    summary.count(candidate.method, "candidates")
                    if outcome == "validated":
                        summary.validated += 1
                        summary.total_tasks += 1
                        summary.tasks.append(item["task"])
                        summary.count(candidate.method, "validated")
                        partner = pair(run.pairing, candidate, list(item.get("fail_to_pass_ids", [])))
                        if partner is not None and partner.id not in state.decided:
                            candidates.first(partner)  # a pair validates far more often than a new bug
                            summary.planned = candidates.planned
                    elif outcome == "enough_tasks":
                        summary.not_needed += 1
                    else:
                        summary.rejected[outcome] += 1
                        summary.count(candidate.method, outcome)
                    summary.last = f"{candidate.method}/{candidate.kind}: {outcome}"
                    # infra errors, enough_tasks and an endpoint's passing failures can go otherwise another time
                    if outcome not in ("infra_error", "internal_error", "enough_tasks") and outcome not in model_method.TRANSIENT:
                        state.record(
                            {
                                "id": candidate.id,
                                "method": candidate.method,
                                "kind": candidate.kind,
                                "function": candidate.function,
                                "outcome": outcome,
                                **{k: v for k, v in item.items() if k != "fail_to_pass_ids"},
                            }
                        )
                    if on_progress:
                        on_progress(summary)
                if outcome == "infra_error":
                    return

        threads = [threading.Thread(target=work, args=(worker, index), name=f"synth-{index}", daemon=True) for index, worker in enumerate(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)  # in slices, so Ctrl-C reaches the main thread
    finally:
        for worker in workers:
            worker.__exit__(None, None, None)
        if run is not None and run.snapshots is not None:
            run.snapshots.close()
    summary.seconds = round(time.monotonic() - started, 1)
    return summary
