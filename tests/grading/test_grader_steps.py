"""The grader's steps before the test run go through the container's private shell, not a `docker exec` each
(`prepare._step`): on the real engine, a gold patch is graded with no one-off process before the tests, and
the same verdict comes from the one-exec-per-step path; a step's output, status and deadline are kept."""

from __future__ import annotations

import re

import pytest
from docker.models.containers import Container

from swe_env.grading import grader, prepare
from swe_env.grading.grader import Grader
from swe_env.runtime import engine
from swe_env.runtime.execute import Executor
from swe_env.runtime.sandbox import Sandbox, SandboxError

from ..helpers import diff_after

pytestmark = pytest.mark.docker


def test_a_grading_runs_no_one_off_process_before_the_tests(task, image, monkeypatch):
    calls: list[str] = []
    real_exec = Executor.exec
    archives: list[int] = []
    real_put = Container.put_archive

    def counted(self, argv, *args, **kwargs):
        calls.append(argv if isinstance(argv, str) else " ".join(argv))
        return real_exec(self, argv, *args, **kwargs)

    def put(self, path, data):
        archives.append(len(data))
        return real_put(self, path, data)

    grader_ = Grader()
    grader_.runner_facts(task, image)  # the probe runs once per image, in a container of its own
    monkeypatch.setattr(Executor, "exec", counted)
    monkeypatch.setattr(Container, "put_archive", put)
    report = grader_.grade(task, task.gold_patch, image=image)
    assert report.status == "graded" and report.resolved, (report.status, report.error)
    assert report.patch_method == "git apply"
    assert calls == []  # the numstat, the apply, the listings and the restore all went through the shell
    # The recorder's files and the key went in as one archive (the start-up module, the hook's module and the native
    # seal are each past the inline limit: an archive each before).
    assert len(archives) == 1
    # The path it replaced (one exec per step) gives the same verdict.
    monkeypatch.setattr(prepare, "STEPS_IN_SHELL", False)
    before = grader_.grade(task, task.gold_patch, image=image)
    assert before.status == "graded" and before.resolved and before.patch_method == "git apply"
    assert len(calls) >= 3
    assert (before.test_results, before.restored) == (report.test_results, report.restored)


def test_a_step_keeps_its_streams_status_and_deadline(task, image, monkeypatch):
    with Sandbox.for_task(task, image, "grader", user=None) as box:
        both = prepare._step(box, "pwd; echo to-stderr >&2; exit 97")
        assert both.exit_code == 97
        assert both.stdout.splitlines() == [box.workdir, "to-stderr"]  # in the repository, both streams in order
        parsed = prepare._step(box, "printf 'a\\0b'; echo to-stderr >&2", parse=True)
        assert parsed.exit_code == 0 and parsed.stdout == "a\0b"  # stdout only, NUL bytes kept
        monkeypatch.setattr(prepare, "STEP_TIMEOUT", 2.0)
        with pytest.raises(SandboxError, match="did not finish"):  # the host's deadline, not the command's end
            prepare._step(box, "sleep 60")
        assert prepare._step(box, "echo again").stdout == "again\n"  # the shell answers after the kill
        prepare.close_private_shell(box)
        assert prepare._step(box, "echo anew").stdout == "anew\n"  # a later step starts another
        with pytest.raises(PermissionError, match="runs no script"):  # not through the agent's confined view
            box.workspace.run_script("echo")


def test_a_warm_pool_grades_in_kept_containers_and_removes_them(task, image, monkeypatch):
    grader_ = Grader(warm_pool=1)
    try:
        first = grader_.grade(task, task.gold_patch, image=image)  # a miss: started on its path, one kept after
        assert grader_._pool is not None and grader_._pool.wait_until_full(timeout=300)
        second = grader_.grade(task, task.gold_patch, image=image)  # a kept one
        assert first.resolved and second.resolved, (first.error, second.error)
        assert grader_._pool.hits == 1
        # A kept container without enough time-to-live left for a grading is removed, not used.
        monkeypatch.setattr(grader, "_TTL_MARGIN", 10 * 86400.0)
        third = grader_.grade(task, task.gold_patch, image=image)
        assert third.resolved, third.error
        used = [re.search(r"swe-env-grader-[0-9a-f]{12}", " ".join(report.log)) for report in (first, second, third)]
        names = {found.group(0) for found in used if found}
        assert len(names) == 3  # three containers, each used once
    finally:
        grader_.close()
    left = engine.client().containers.list(all=True, sparse=True, filters={"label": f"{engine.MANAGED_LABEL}=1"})
    assert not names & {name.lstrip("/") for container in left for name in container.attrs.get("Names") or []}


def _slow_fuzzy_patch(lines: int, hunks: int) -> str:
    """A file made and then patched by near-miss hunks: git refuses it at once, GNU patch's fuzz scans the file
    once per hunk (red team rt3, s1)."""
    out = [
        "diff --git a/big.txt b/big.txt\nnew file mode 100644\n--- /dev/null\n+++ b/big.txt\n",
        f"@@ -0,0 +1,{lines} @@\n",
        "+a\n" * lines,
        "diff --git a/big.txt b/big.txt\n--- a/big.txt\n+++ b/big.txt\n",
    ]
    step = lines // (hunks + 1)
    for hunk in range(hunks):
        body = [" a"] * 3 + ["-a"] * 5 + ["-b"] + ["-a"] * 5 + ["+a"] * 5 + ["+c"] + ["+a"] * 5 + [" a"] * 3
        out.append(f"@@ -{1 + hunk * step},17 +{1 + hunk * step},17 @@\n" + "\n".join(body) + "\n")
    return "".join(out)


def test_a_patch_that_keeps_every_method_busy_is_the_models_failure(task, image, monkeypatch):
    """Only the patch's content can make applying it take long: past `APPLY_TIMEOUT` a method has failed, and a
    patch no method applied in time is `patch_failed`, the model's, never an infrastructure failure."""
    monkeypatch.setattr(prepare, "APPLY_TIMEOUT", 2)
    report = Grader(reward_mode="signed").grade(task, _slow_fuzzy_patch(100_000, 200), image=image)
    assert report.status == "patch_failed" and not report.infrastructure_failure, (report.status, report.error)
    assert "did not finish within 2 s" in report.error and report.reward == -1.0


def test_more_restored_paths_than_a_command_line_holds_are_put_back(task, image):
    """A patch that adds tens of thousands of protected files names more paths than one command line can hold
    (the kernel's argument limit is about 2 MB): they are removed through a list in a file (red team rt3, s2),
    and the grading goes on to its verdict rather than failing as ours."""
    folder = "tests/" + "d" * 60
    added = "".join(
        f"diff --git a/{folder}/f{n}.txt b/{folder}/f{n}.txt\nnew file mode 100644\n--- /dev/null\n+++ b/{folder}/f{n}.txt\n@@ -0,0 +1 @@\n+x\n"
        for n in range(30_000)
    )
    report = Grader().grade(task, task.gold_patch + added, image=image)
    assert report.status == "graded" and report.resolved, (report.status, report.error)
    assert not report.infrastructure_failure and any(path.startswith(folder) for path in report.restored)


# Run by the test command before the tests: every process of the container that is not this one's ancestor, init,
# the container's main process (`swe-env-main`) or its `sleep`; any such process fails the command (exit 1).
_PROCESSES_BESIDE_THE_TESTS = r"""
import os, sys
def parent(pid):
    with open("/proc/%d/stat" % pid) as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])
chain, pid = set(), os.getpid()
while pid > 1:
    chain.add(pid)
    pid = parent(pid)
rows = []
for entry in os.listdir("/proc"):
    if entry.isdigit() and int(entry) not in chain and entry != "1":
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                rows.append((int(entry), parent(int(entry)), handle.read().replace(b"\0", b" ").decode()))
        except OSError:
            pass
mains = {pid for pid, ppid, cmd in rows if ppid == 1 and "swe-env-main" in cmd}
beside = [row for row in rows if row[0] not in mains and not (row[1] in mains and row[2].startswith("sleep"))]
if beside:
    sys.exit("processes beside the test command: %r" % beside)
"""


@pytest.mark.parametrize("warm", [0, 1])
def test_no_process_of_the_graders_runs_beside_the_test_command(task, image, monkeypatch, warm):
    """The grader's private shell is gone when the test command starts: the command finds no process in the container
    but its own ancestors and the container's own (init, the main process, its sleep), so nothing of ours is there
    for the code under test to talk to. Control: with the shell left open, the same command finds it."""
    import shlex

    probing = task.model_copy(
        update={"tests": task.tests.model_copy(update={"command": f"python -c {shlex.quote(_PROCESSES_BESIDE_THE_TESTS)} && {task.tests.command}"})}
    )
    grader_ = Grader(warm_pool=warm)
    try:
        report = grader_.grade(probing, task.gold_patch, image=image)
        assert report.status == "graded" and report.resolved, (report.error, report.output[-2000:])
        monkeypatch.setattr(prepare, "close_private_shell", lambda box: None)
        kept = grader_.grade(probing, task.gold_patch, image=image)
        assert not kept.resolved and "processes beside the test command" in kept.output, kept.output[-2000:]
        assert "/bin/bash --noprofile --norc" in kept.output
    finally:
        grader_.close()


# Red team rt4, g1 and g2: a traditional patch git cannot read, whose `Index:` line GNU patch (the last method) takes
# as the name, writes the repository's own .git/config: broken, or with a filter whose smudge never ends.
_INTO_GIT_CONFIG = {
    "broken config": "Index: a/.git/config\n--- config\n+++ config\n@@ -1,1 +1,2 @@\n [core]\n+[broken\n",
    "hanging filter": (
        'Index: a/.git/config\n--- config\n+++ config\n@@ -1,1 +1,3 @@\n [core]\n+[filter "swe"]\n'
        "+\tsmudge = sleep 100000\nIndex: a/.git/info/attributes\n--- attributes\n+++ attributes\n"
        "@@ -0,0 +1 @@\n+* filter=swe\nIndex: a/README.md\n--- README\n+++ README\n@@ -1,1 +1,2 @@\n"
        " # ledger\n+x\n"
    ),
}


@pytest.mark.parametrize("name", list(_INTO_GIT_CONFIG))
def test_a_patch_that_gnu_patch_writes_into_git_with_is_the_models_failure(task, image, monkeypatch, name):
    """After the last method nothing resets the tree (the container is discarded): git would read what GNU patch
    wrote into .git/, and our reset failing (a config git cannot parse) or hanging (a filter's smudge) made the model's
    `patch_failed` an infrastructure error, after `STEP_TIMEOUT` for the hang (here shortened)."""
    monkeypatch.setattr(prepare, "STEP_TIMEOUT", 30.0)
    report = Grader(reward_mode="signed").grade(task, _INTO_GIT_CONFIG[name], image=image)
    assert report.status == "patch_failed" and not report.infrastructure_failure, (report.status, report.error)
    assert report.reward == -1.0


def test_a_shared_config_inflated_past_what_the_shell_keeps_is_restored_not_ours(task, image, monkeypatch):
    """Red team rt4, g3: a patch made `pyproject.toml` larger than the private shell keeps (92 MiB from a binary
    literal), and reading it to see whether its pytest section changed failed as our step: infra_error. Now a shared
    config larger than `CONFIG_READ_LIMIT` counts as changed and is restored whole. Both limits are shortened here
    (256 KiB kept by the shell, 64 KiB read) so a text patch of a few MB stands for the inflated one."""
    from swe_env.runtime import files

    padding = diff_after(image, task, 'for i in $(seq 1 40000); do echo "# padding line $i"; done >> pyproject.toml')
    monkeypatch.setattr(files, "_FILES_OUTPUT_LIMIT", 256 * 1024)
    monkeypatch.setattr(prepare, "CONFIG_READ_LIMIT", 64 * 1024)
    report = Grader(reward_mode="signed").grade(task, task.gold_patch + padding, image=image)
    assert report.status == "graded" and not report.infrastructure_failure, (report.status, report.error)
    assert "pyproject.toml" in report.restored and report.resolved, (report.restored, report.error)


# A `.gitattributes` whose attribute has no value (red team rt6b, A3): every git step that converts a file of the tree
# dies ("true/false are no valid working-tree-encodings"): `git status` on a file changed at the same size, the
# restore's `git checkout`, `git apply` of the hidden test patch. README.md changed at its size so `git status` reads it.
_HOSTILE_ATTRIBUTES = "printf '* working-tree-encoding\\n' > .gitattributes && sed -i '1s/^./X/' README.md"


def test_attributes_a_patch_adds_do_not_reach_the_graders_git(task, image):
    """Red team rt6b, A3: the patch's `.gitattributes` made the test patch "not apply" (`test_patch_failed`, ours:
    the reward withheld) and the restore fail (`infra_error`). The grader removes every `.gitattributes` that is not
    base_commit's before its git steps read the tree and restores base_commit's: the real fix beside it resolves,
    the attack alone is the model's failure."""
    attributes = diff_after(image, task, _HOSTILE_ATTRIBUTES)
    fixed = Grader(reward_mode="signed").grade(task, task.gold_patch + attributes, image=image)
    assert fixed.status == "graded" and fixed.resolved and fixed.reward == 1.0, (fixed.status, fixed.error)
    assert ".gitattributes" in fixed.restored
    alone = Grader(reward_mode="signed").grade(task, attributes, image=image)
    assert alone.status == "graded" and not alone.infrastructure_failure and alone.reward == -1.0, (alone.status, alone.error)


def test_a_grader_step_that_fails_only_after_the_patch_is_the_models(task, image, monkeypatch):
    """The evidence on its own (the removal of the patch's attributes turned off here): a grader's step that ran and
    failed after the patch reached the tree, while a fresh container of the same image does the steps and takes the
    test patch, is the model's `patch_failed` (-1 signed), the cause named; not `infra_error`."""
    attributes = diff_after(image, task, _HOSTILE_ATTRIBUTES)
    monkeypatch.setattr(prepare, "DROP_PATCH_ATTRIBUTES", ":")
    report = Grader(reward_mode="signed").grade(task, attributes, image=image)
    assert report.status == "patch_failed" and not report.infrastructure_failure, (report.status, report.error)
    assert report.reward == -1.0 and "clean base" in (report.error or ""), report.error


def _broken_test_patch(task):
    """The task with a test patch whose first context line is not base_commit's: it applies nowhere."""
    lines = task.tests.test_patch.splitlines(keepends=True)
    first = next(index for index, line in enumerate(lines) if line.startswith(" ") and index > 0 and lines[index - 1].startswith("@@"))
    lines[first] = " # not in base_commit" + lines[first][1:]
    return task.model_copy(update={"tests": task.tests.model_copy(update={"test_patch": "".join(lines)})})


def test_a_test_patch_that_applies_nowhere_stays_ours(task, image):
    """The other side: when the task's test patch does not apply to the clean base either, the task is broken, not
    the patch: `test_patch_failed`, ours (withheld), with a patch or without."""
    broken = _broken_test_patch(task)
    for patch in (task.gold_patch, ""):
        report = Grader(reward_mode="signed").grade(broken, patch, image=image)
        assert report.status == "test_patch_failed" and report.infrastructure_failure and report.reward == 0.0, (report.status, report.error)
