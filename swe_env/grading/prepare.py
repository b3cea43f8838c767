"""Preparing a grader's container for the hidden tests: the agent's patch applied, protected files put back, the
test patch applied.

1. the patch is written to the grading's workspace and applied with the first method that works (git apply,
   git apply --3way, patch --fuzz; the tree is reset between tries), unless git and swe-env read it differently
   or it writes inside .git/ or outside the repository (`apply_patch`);
2. every changed file that could change how tests are collected or reported goes back to base_commit (the pure
   decision is `protection.paths_to_restore`; `restore_plan` gathers what it decides from), and the hidden test
   patch is applied, in one step (`restore_and_apply_test_patch`).

Every step runs through the container's private shell (`_step`: why that is as sound as a `docker exec`
each at a fraction of its cost, is in its docstring), started before any step and ended before the tests
(`close_private_shell`). Each step returns what it found; the grader writes the report.
"""

from __future__ import annotations

import functools
import shlex

from ..data.task import Task
from ..errors import clip
from ..runtime.sandbox import Sandbox, SandboxError, SandboxSpec
from ..runtime.shell import ShellError
from ..runtime.streams import ExecResult
from . import diffs, inflation, protection, runner_probe, runners
from .protection import GIT as _GIT

GRADER_DIR = "/run/swe-env-grader"
"""Where the grader keeps patches, output and the runner's results: outside the repository."""

STEPS_IN_SHELL = True
"""Whether the grader's steps before the test run go through the container's private shell (`_step`); off only to
measure the one-exec-per-step path against it (`bench/grade_overhead.py --compare`)."""
STEP_TIMEOUT = 900.0
"""Seconds one of the grader's own steps (git apply, a listing, the restore) may take; then it is a SandboxError."""

_RESTORE_FAILED = 97


class StepFailed(SandboxError):
    """One of the grader's own steps ran and failed (the engine answered: an exit code, or more output than the
    private shell keeps) after the patch reached the tree, or on the patch's own text: the grader asks a clean
    container of the same image whether the task's steps work there (`clean_base_takes_test_patch`) before it judges
    whose failure it is (`endings.judge`). `test_patch`: the task's hidden test patch did not apply."""

    def __init__(self, message: str, test_patch: bool = False):
        super().__init__(message)
        self.test_patch = test_patch


DROP_PATCH_ATTRIBUTES = (
    "find . -path ./.git -prune -o -name .gitattributes -print0 | while IFS= read -r -d '' found; do "
    f'if [ -f "$found" ] && [ ! -L "$found" ] && {_GIT} cat-file blob "HEAD:${{found#./}}" 2>/dev/null | cmp -s - "$found"; '
    'then continue; fi; rm -rf -- "$found" || exit 1; done'
)
"""Removes every `.gitattributes` of the work tree that is not base_commit's own, byte for byte (added, changed, a link
or a folder): git reads them from the tree in the grader's own steps (`git status`, `git checkout`, `git apply` of the
test patch), and an attribute such as `working-tree-encoding` without a value makes each of those die (red team
rt6b, A3). Run before any git step reads the patched tree; the restore then puts base_commit's back (they are always
restored: `protection.GIT_READS_FROM_TREE`). findutils, `cmp` and `git cat-file blob` only: nothing here converts."""
APPLY_TIMEOUT = 300
"""Seconds one way of applying the patch may take (killed inside the container past it): only the patch's content
can make git or GNU patch take long (a fuzzy patch of a million-line file), so a method past it failed, and a patch no
method applied in time is the model's `patch_failed`, never an infrastructure failure (red team rt3, s1)."""
_TIMED_OUT = 124
"""coreutils `timeout`'s exit status when the time ran out."""

APPLY_METHODS = [
    ("git apply", f"{_GIT} apply --whitespace=nowarn {{patch}}"),
    ("git apply --3way", f"{_GIT} apply --3way --whitespace=nowarn {{patch}}"),
    ("patch --fuzz=5", "patch --batch --fuzz=5 -p1 -i {patch}"),
]


def apply_patch(box: Sandbox, patch: diffs.Patch, workspace: str, disk: str | None = None) -> tuple[str | None, str, list[str]]:
    """Write the patch into the workspace and apply it (`_apply`'s answer), unless it is refused: (None, why, []);
    `disk` is the task's disk limit, which what the patch's copies could write must fit (`_copies_refusal`)."""
    patch_path = f"{workspace}/model.patch"
    box.write_file(patch_path, patch.text.encode("utf-8", errors="surrogateescape"))
    # What the patch changes is git's reading of it; ours must cover it, or the restore step
    # could miss a file git writes (ours also names a rename's old path, which git's list leaves out).
    ours = patch.paths
    git_paths = _paths_git_reads(box, patch_path)
    if git_paths is not None and set(git_paths) - set(ours):
        return (
            None,
            (
                "git and swe-env read this patch differently (git: "
                f"{', '.join(sorted(git_paths))[:300]}; swe-env: {', '.join(sorted(ours))[:300]}); it is refused"
            ),
            [],
        )
    unsafe = [path for path in [*ours, *(git_paths or [])] if _unsafe_path(path)]
    if unsafe:
        return None, f"the patch writes inside .git/ or outside the repository ({unsafe[0]}), which is not allowed", []
    too_large = _copies_refusal(box, patch, disk)
    if too_large:
        return None, too_large, []
    return _apply(box, patch_path, patch, workspace)


_LARGEST_SOURCE = (
    f"{{ find . -path ./.git -prune -o \\( -type f -o -type l \\) -printf '%s\\n'; "
    f"{_GIT} cat-file --batch-all-objects --batch-check='%(objectsize)'; }} 2>/dev/null "
    "| awk 'BEGIN { m = 0 } $1 > m { m = $1 } END { print m }'"
)
"""The largest file of the work tree (ignored and untracked ones too; links as links) and of git's object store:
the most one copy, or one data-less binary entry naming a blob, can take from the repository."""


def _copies_refusal(box: Sandbox, patch: diffs.Patch, disk: str | None) -> str | None:
    """Why the patch's `copy from` headers and data-less binary entries could write past the disk budget
    (`inflation.copies_refusal`: each a header of ~100 bytes making a file as large as one already there, red team
    rt4 g4's kin), or None. Asks the container only when the patch has such entries; before any method runs."""
    found = patch.derived("inflation", lambda read: inflation.measure(read.text))
    if not (found.copies or found.dataless):
        return None
    largest = _checked(_step(box, _LARGEST_SOURCE, parse=True), "measuring the repository's largest file", patched=False)
    try:
        size = int(largest.stdout.strip() or 0)
    except ValueError:
        raise SandboxError(f"measuring the repository's largest file gave {clip(largest.stdout)!r}") from None
    return inflation.copies_refusal(found, size, disk)


def _paths_git_reads(box: Sandbox, patch_path: str) -> list[str] | None:
    """Every path git's own reading of the patch names (old and new), or None when git cannot read it."""
    result = _step(box, f"{_GIT} apply --numstat -z {shlex.quote(patch_path)}", parse=True)
    if result.exit_code != 0:
        return None
    entries, paths = result.stdout.split("\0"), []
    index = 0
    while index < len(entries):
        fields = entries[index].split("\t", 2)
        if len(fields) == 3 and fields[2]:
            paths.append(fields[2])
        elif len(fields) == 3:  # a rename or copy: the old and new names follow as entries of their own
            paths.extend(entries[index + 1 : index + 3])
            index += 2
        index += 1
    return [path for path in dict.fromkeys(paths) if path]


def _apply(box: Sandbox, patch_path: str, patch: diffs.Patch, workspace: str) -> tuple[str | None, str, list[str]]:
    """Apply with the first method that works: (its name, "", files it wrote) or (None, why, [])."""
    created = patch.created
    # A method killed at its timeout may leave git's index lock behind: the reset removes it first.
    reset = f"rm -f .git/index.lock && {{ {DROP_PATCH_ATTRIBUTES}; }} && {_GIT} reset --hard -q && {_GIT} clean -fdq"
    if created:  # files a failed try created may be ignored by git, which `clean` leaves alone
        reset += " && " + remove_listed(box, f"{workspace}/created-paths", created)
    marker = shlex.quote(f"{workspace}/before-patch")
    errors = []
    for index, (name, template) in enumerate(APPLY_METHODS):
        git_method = name.startswith("git")
        # Only a method that follows needs the tree back; after the last one the patch has failed and the container
        # is discarded. Nor may it run then: GNU patch may have written into .git/ (a broken `config`, a filter that
        # hangs git), and git would read that (red team rt4, g1 and g2: our reset failing made the model's
        # `patch_failed` an infrastructure error, or held the grading for STEP_TIMEOUT).
        last = index == len(APPLY_METHODS) - 1
        if not git_method:  # GNU patch reads names its own way: see afterwards what it wrote
            _checked(
                _step(box, f"mkdir -p {shlex.quote(workspace)} && touch {marker} && sleep 0.01"), "marking the time before the patch", patched=False
            )
        result = _step(box, f"/usr/bin/timeout -k 5 {APPLY_TIMEOUT} " + template.format(patch=shlex.quote(patch_path)))
        if result.exit_code == _TIMED_OUT:
            errors.append(f"{name}: did not finish within {APPLY_TIMEOUT} s")
            if not last:
                _checked(_step(box, reset), "resetting the tree after a failed patch method")
            continue
        if result.exit_code == 0 and git_method:
            return name, "", []
        if result.exit_code == 0:
            written = _step(
                box,
                f"find . -path ./.git -prune -o \\( -type f -o -type l \\) -newer {marker} -print0; "
                f"printf '\\0--\\0'; find .git -newer {marker} -print -quit",
                parse=True,
            )
            _checked(written, "listing what the patch wrote")
            tree, _, in_git = written.stdout.partition("\0--\0")
            if not in_git.strip():
                return name, "", [path.removeprefix("./") for path in tree.split("\0") if path]
            failure = "it wrote inside .git/"
        else:
            failure = clip(result.output, keep="tail")
        errors.append(f"{name}: {failure}")
        # Every method starts from the tree the image had: a half-applied try leaves nothing behind.
        if not last:
            _checked(_step(box, reset), "resetting the tree after a failed patch method")
    return None, "the patch does not apply: " + " | ".join(errors), []


def restore_plan(
    box: Sandbox, task: Task, runner: runners.Runner, named: list[str], facts: runner_probe.RunnerFacts, test_patch: diffs.Patch
) -> tuple[protection.Restore, set[str]]:
    """What goes back to base_commit (`protection.paths_to_restore`) and base_commit's files.

    Changed files are the ones the patch names (git reads the same ones, or the patch was
    refused), the ones GNU patch wrote when it applied the patch (both in `named`), and the
    ones git sees changed. HEAD is base_commit in a grader's container.
    """
    # One exec for both listings: status entries are never empty, so the first empty entry separates them.
    # The command's own `-c FILE` and `-p NAME` are what the runner reads too, wherever they point.
    named_files, named_plugins = runner_probe.named_in_command(task.tests.command, task.environment.workdir)
    if not task.tests.ask_runner:
        named_files, named_plugins = [], frozenset()
    _checked(_step(box, DROP_PATCH_ATTRIBUTES), "removing the patch's .gitattributes")
    listing = _step(
        box, f"{_GIT} status --porcelain=v1 -z --untracked-files=all --no-renames && printf '\\0' && git ls-tree -r --name-only -z HEAD", parse=True
    )
    _checked(listing, "listing changed and tracked files")
    entries = listing.stdout.split("\0")
    boundary = entries.index("")
    changed = [entry[3:] for entry in entries[:boundary] if len(entry) > 3]
    in_base = {entry for entry in entries[boundary + 1 :] if entry}
    plan = protection.paths_to_restore(
        named,
        changed,
        in_base=in_base,
        protected=[
            *task.tests.protected,
            *runner.protected_files(task.tests.command),
            *facts.protected(),
            *(path for path in named_files if "*" not in path and "?" not in path),
            *protection.GIT_READS_FROM_TREE,
        ],  # globs otherwise
        protected_config=[*task.tests.protected_config, *facts.protected_config()],
        protect_imports=task.tests.protect_imports,
        test_patch_paths=test_patch.paths,
        config_changed=functools.partial(_pytest_section_changed, box, task),
        importable=facts.shadowable | named_plugins,
    )
    return plan, in_base


CONFIG_READ_LIMIT = 4 * 1024 * 1024
"""Bytes of a shared config file (`pyproject.toml`, `setup.cfg`, `tox.ini`) the grader reads to see whether its pytest
section changed; a larger one counts as changed and is restored whole: its size is the patch's doing (red team rt4, g3:
a binary patch inflated `pyproject.toml` past what the private shell keeps, and that step's failure was ours)."""
_TOO_LARGE = 3


def _pytest_section_changed(box: Sandbox, task: Task, path: str) -> bool:
    quoted = shlex.quote(path)
    if _step(box, f"test -L {quoted}").exit_code == 0:
        return True
    now = _step(
        box, f'[ "$(stat -c %s -- {quoted} 2>/dev/null || echo 0)" -le {CONFIG_READ_LIMIT} ] || exit {_TOO_LARGE}; cat -- {quoted}', parse=True
    )
    if now.exit_code == _TOO_LARGE:
        return True
    before = _step(box, shlex.join(["git", "cat-file", "-p", f"{task.base_commit}:{path}"]), parse=True)
    old_text = before.stdout if before.exit_code == 0 else None
    new_text = now.stdout if now.exit_code == 0 else None
    return protection.pytest_section_changed(path, old_text, new_text)


def restore_and_apply_test_patch(box: Sandbox, task: Task, plan: protection.Restore, workspace: str) -> str | None:
    """Put back what `plan` says (the removals first, then one checkout from base_commit), then apply the hidden test
    patch: None, or why the test patch does not apply.

    Both share one step (`_step`); a restore that fails is a SandboxError. The paths go through files in the
    workspace, never the command line: a patch may name more than one command can hold (red team rt3, s2).
    """
    restore = []
    if plan.removed:
        restore.append(remove_listed(box, f"{workspace}/removed-paths", plan.removed))
    if plan.checked_out:
        listing = f"{workspace}/checked-out-paths"
        box.write_file(listing, "\0".join(plan.checked_out).encode("utf-8", "surrogateescape"))
        restore.append(f"{_GIT} checkout -q {shlex.quote(task.base_commit)} --pathspec-from-file={shlex.quote(listing)} --pathspec-file-nul")
    script = [f"{{ {' && '.join(restore)}; }} || exit {_RESTORE_FAILED}"] if restore else []
    if task.tests.test_patch.strip():
        box.write_file(f"{workspace}/test.patch", task.tests.test_patch.encode())
        script.append(f"{_GIT} apply --whitespace=nowarn {workspace}/test.patch")
    if not script:
        return None
    applied = _step(box, "\n".join(script))
    if applied.exit_code == _RESTORE_FAILED:
        raise StepFailed(f"restoring protected files failed: {clip(applied.output, keep='tail')}")
    if applied.exit_code != 0:
        return f"the task's test patch does not apply: {clip(applied.output, keep='tail')}"
    return None


def clean_base_takes_test_patch(spec: SandboxSpec, task: Task) -> bool | None:
    """Whether the grader's git steps work on the task's clean base now: in a fresh container of `spec` (the same
    image, nothing of the patch in it), `git status` runs and the hidden test patch applies (`--check`). Asked only
    when a step failed after the patch reached the tree (`StepFailed`): True makes that failure the patch's doing; None
    when the engine could not tell (then it stays ours)."""
    try:
        box = open_container(spec)
    except SandboxError:
        return None
    try:
        script = f"{_GIT} status --porcelain >/dev/null"
        if task.tests.test_patch.strip():
            box.write_file(f"{GRADER_DIR}/clean-check/test.patch", task.tests.test_patch.encode())
            script += f" && {_GIT} apply --check --whitespace=nowarn {GRADER_DIR}/clean-check/test.patch"
        return _step(box, script).exit_code == 0
    except SandboxError:
        return None
    finally:
        box.close()


def changed_lines(box: Sandbox, task: Task, workspace: str, patch: diffs.Patch, paths: set[str]) -> dict[str, list[tuple[int, int]]]:
    """The new side of each hunk (context included) of every file among `paths` as the tree holds it now, after the
    patch was applied and before anything of it ran: git's own diff against base_commit, not the patch's hunk headers,
    since `git apply` and `patch` place a hunk at an offset when its lines moved (red team rt3, c5: a function changed
    at line 87 by a hunk headed `@@ -40` counted as unchanged). A file git's diff leaves out (cut output) is changed as
    a whole by the sealed hook (`diffs.Patch.changed_lines`). Should git's diff not run or not be read whole, every
    file is changed as a whole (`{}`): never the patch's own headers, which a patch could make the answer by naming a
    file git cannot take (the review of rt3's c5). The paths are literal (`protection.GIT`'s `--literal-pathspecs`):
    a name such as `:(exclude)x` is a file's name, not pathspec magic."""
    wanted = sorted(path for path in paths if not _unsafe_path(path))
    if not wanted:
        return {}
    listing = f"{workspace}/changed-paths"
    box.write_file(listing, "\0".join(wanted).encode("utf-8", "surrogateescape"))
    # Paths through a file (a patch may name more than one argument can hold); no external diff or text conversion
    # a .gitattributes of the patch's could name.
    try:
        found = _step(
            box,
            f"xargs -0 -a {shlex.quote(listing)} {_GIT} diff --no-ext-diff --no-textconv --no-color {shlex.quote(task.base_commit)} --",
            parse=True,
        )
    except SandboxError:  # more output than the private shell keeps: every file changed as a whole
        return {}
    if found.exit_code != 0:
        return {}
    return diffs.Patch.read(found.stdout).changed_lines(wanted)


def open_container(spec: SandboxSpec) -> Sandbox:
    """A started grading container with its private shell open (`Grader.warm_pool`'s opener; nothing is left
    behind if that fails)."""
    box = Sandbox.of(spec)
    try:
        box.start()
        box.files.run_script(":")
    except BaseException:
        box.close()
        raise
    return box


PRIVATE_SHELL_EXIT_SECONDS = 5.0
"""How long the engine may take to see the private shell's bash exit once its input closed; then every process in the
container but its own is stopped (`Lifecycle.stop_all_processes`), so the test command never starts beside it."""


def close_private_shell(box: Sandbox) -> None:
    """End the private shell before the test command starts: no bash of ours runs beside the code under test
    (a later use would start another), and the run's end finds only the container's own processes to stop. Ended
    means the engine says its exec has ended, not only that its socket closed (`FileShell.close_and_wait`)."""
    if not box.files.close_shell(wait=PRIVATE_SHELL_EXIT_SECONDS):  # opened by the file writes and the steps
        box.life.stop_all_processes()


def _step(box: Sandbox, command: str, *, parse: bool = False) -> ExecResult:
    """One of the grader's own steps before the test run (bash, run in the repository as root): its exit code and
    output. With `parse`, stdout only and whole (stderr dropped; a SandboxError when the output was cut), for what
    the grader reads; else both streams in order (in `stdout`), for messages.

    Through the container's private shell (`runtime.files.Files.run_script`, the bash the file writes use): a round
    trip of a millisecond or two on its socket, where a `docker exec` each costs ~70 ms on a quiet engine and
    seconds on a loaded one. As sound as an exec: that bash starts in the fresh grading container before any
    patched code can run (at the first file write or step), only git, GNU patch and coreutils run through it,
    each reading the patch as data (the grader's git with its own config, `_GIT`), and it is closed before the
    test command starts (`close_private_shell`), so no code of the patch's ever runs beside it, and nothing after
    the run is read through it. Its reads are bounded (the file shell's output limit) and waited for at most
    `STEP_TIMEOUT` (then its processes are killed and the step is a SandboxError, judged as any other)."""
    if not STEPS_IN_SHELL:
        return box.exec(command, idempotent=parse)
    script = f"( cd -- {shlex.quote(box.workdir)} || exit 1\n{command}\n)" + (" 2>/dev/null" if parse else "")
    try:
        result = box.files.run_script(script, timeout=STEP_TIMEOUT)
    except ShellError as exc:  # no shell could start: the container is gone or broken, judged as any engine failure
        raise SandboxError(str(exc)) from None
    if result.exit_code is None:
        raise SandboxError(f"a step of the grader did not finish: {'; '.join(result.notes) or 'the shell ended'}")
    if parse and result.cut_chars:
        raise StepFailed(f"a step of the grader wrote more than the private shell keeps ({result.cut_chars} characters cut)")
    return ExecResult(result.exit_code, result.output, "")


def remove_listed(box: Sandbox, list_path: str, paths: list[str]) -> str:
    """The command removing `paths`, their names written NUL-separated to `list_path` in the container: a patch
    may name more paths than one command line can hold (the kernel refuses an exec past its argument limit,
    red team rt3, s2), and `xargs` runs `rm` as often as they need."""
    box.write_file(list_path, "\0".join(paths).encode("utf-8", "surrogateescape"))
    return f"xargs -0 -r -a {shlex.quote(list_path)} rm -rf --"


def _unsafe_path(path: str) -> bool:
    """A path inside .git/ or outside the work tree (absolute, or through `..`)."""
    parts = path.split("/")
    return path.startswith("/") or ".git" in parts or ".." in parts


def _checked(result, what: str, *, patched: bool = True):
    """`result` of an exec, or an error saying `what` failed and how (the grader's own step failed): a `StepFailed`
    when the step read the patched tree (`patched`), else a SandboxError (a step on base_commit's tree alone)."""
    if result.exit_code != 0:
        error = StepFailed if patched else SandboxError
        raise error(f"{what} failed (exit {result.exit_code}): {clip(result.output, keep='tail')}")
    return result
