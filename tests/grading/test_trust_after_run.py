"""After the agent's code ran, nothing in its container is trusted (issue 13's last red-team
findings), on the real engine: a process the tests leave behind cannot rewrite the results, and
system programs the code under test (or the agent) broke or replaced neither hide files from the
disk check nor turn the model's failure into an infrastructure one."""

from __future__ import annotations

import platform
import time

import pytest

from swe_env import SWEEnv
from swe_env.errors import classify_ending
from swe_env.grading import testlogs
from swe_env.grading.grader import Grader
from swe_env.grading.runners import Runner
from swe_env.runtime.sandbox import Sandbox

from ..helpers import with_code as _with_code

pytestmark = pytest.mark.docker


def _passing_report(test_ids: list[str]) -> str:
    """A JUnit report (xunit1, as the grader asks pytest for) in which every one of `test_ids` passed."""
    cases = []
    for test_id in test_ids:
        path, _, name = test_id.partition("::")
        classname = path.removesuffix(".py").replace("/", ".")
        cases.append(f'<testcase classname="{classname}" name="{name}" file="{path}" time="0.01"/>')
    return '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="%d">%s</testsuite></testsuites>' % (
        len(cases),
        "".join(cases),
    )


# Forked during collection: a detached grandchild (its own session, so no kill of pytest's group
# reaches it) that waits for pytest to exit, then writes a passing report wherever the grader's
# report could be: the results path pytest was given (opened while pytest still ran), and any
# junit.xml in the grader's folder, as the old report file was.
LEFT_BEHIND = """
import os as _os, sys as _sys, time as _time
if "pytest" in _sys.modules and not _os.environ.get("SWE_ENV_TEST_CHILD"):
    _os.environ["SWE_ENV_TEST_CHILD"] = "1"
    _parent = _os.getpid()
    _target = [w.split("=", 1)[1] for w in _os.environ.get("PYTEST_ADDOPTS", "").split() if w.startswith("--junitxml=")]
    if _os.fork() == 0:
        _os.setsid()
        if _os.fork() == 0:
            _held = []
            for _path in _target:
                try:
                    _held.append(open(_path, "w"))
                except OSError:
                    pass
            while _os.path.exists("/proc/%d" % _parent):
                _time.sleep(0.005)
            for _handle in _held:
                try:
                    _handle.write(FAKE)
                    _handle.flush()
                except OSError:
                    pass
            for _root, _dirs, _files in _os.walk("/run"):
                for _name in _files:
                    if _name.endswith(".xml"):
                        open(_os.path.join(_root, _name), "w").write(FAKE)
        _os._exit(0)
"""


def test_a_process_the_tests_leave_behind_cannot_rewrite_the_results(task, image):
    fake = _passing_report(task.tests.fail_to_pass)
    # The forged report would pass every listed test if it were believed.
    believed = testlogs.statuses_for(task.tests.fail_to_pass, Runner().read(fake.encode()), "")
    assert all(status == testlogs.PASSED for status in believed.values()), believed
    alone, with_fix = _with_code(image, task, f"FAKE = {fake!r}\n" + LEFT_BEHIND)
    grader = Grader()
    report = grader.grade(task, alone, image=image)
    assert report.status == "graded" and not report.resolved and report.reward == 0.0, (report.status, report.error)
    honest = grader.grade(task, with_fix, image=image)
    assert honest.status == "graded" and honest.resolved, (honest.status, honest.error, honest.log[-4:])


# At pytest's exit, as root in the grader's container: break what a host-side check might run.
BREAK_PROGRAMS = """
import atexit as _atexit, os as _os
def _break():
    for _name in ("wc", "base64", "stat", "head", "tail"):
        try:
            _os.rename("/usr/bin/" + _name, "/usr/bin/." + _name + ".gone")
        except OSError:
            pass
    with open("/usr/bin/find", "w") as _stub:
        _stub.write("#!/bin/sh\\necho 0\\n")
    _os.makedirs("/tmp/swe-env-many", exist_ok=True)
    for _i in range(FILES):
        open("/tmp/swe-env-many/%d" % _i, "w").close()
_atexit.register(_break)
"""


@pytest.mark.parametrize("files", [0, 6000])
def test_programs_broken_by_the_code_under_test_change_nothing(task, image, files):
    """The host reads and counts through the engine only: with the system's programs broken, the
    fix still resolves; with 6,000 empty files on top (96 MB at 16 KiB each, over 64m) it does not."""
    small = task.model_copy(update={"limits": task.limits.model_copy(update={"disk": "64m"})})
    _alone, with_fix = _with_code(image, task, f"FILES = {files}\n" + BREAK_PROGRAMS)
    report = Grader().grade(small, with_fix, image=image)
    assert report.status == "graded" and not report.infrastructure_failure, (report.status, report.error)
    if files:
        assert not report.resolved and "files and folders" in (report.error or ""), report.error
    else:
        assert report.resolved, (report.error, report.log[-4:])


def test_an_agent_that_breaks_the_system_programs_is_still_measured(task):
    """The agent removes `wc`, replaces `find` with a stub and makes 40,000 empty files: the engine's
    count still ends the episode at the disk limit (the agent's doing), not as a dead sandbox."""
    tight = task.model_copy(update={"limits": task.limits.model_copy(update={"disk": "500m", "max_steps": 40})})
    env = SWEEnv(tasks=[tight])
    try:
        env.reset(options={"task_id": task.id})
        script = (
            "rm -f /usr/bin/wc && printf '#!/bin/sh\\necho 0\\n' > /usr/bin/find && mv /usr/bin/base64 /usr/bin/b64 "
            "&& mkdir -p /tmp/many && cd /tmp/many && seq 40000 | xargs touch && sleep 1.2"
        )
        observation, _reward, _terminated, truncated, _info = env.step({"tool": "bash", "command": script})
        for _ in range(12):
            if truncated:
                break
            observation, _reward, _terminated, truncated, _info = env.step({"tool": "bash", "command": "sleep 0.3"})
        assert truncated and env.trajectory.termination == "disk_limit", observation
    finally:
        env.close()


def test_an_agent_that_deletes_bash_ends_its_own_episode(task):
    """Without /bin/bash no shell can start again: the engine's list of changes shows the agent removed
    it, so the episode ends as the agent's doing (`sandbox_broken`, graded as a failure), not as ours."""
    from swe_env.errors import classify_ending

    env = SWEEnv(tasks=[task])
    try:
        env.reset(options={"task_id": task.id})
        observation, reward, _terminated, truncated, info = env.step({"tool": "bash", "command": "rm -f /usr/bin/bash /bin/bash; exit"})
        assert truncated and env.trajectory.termination == "sandbox_broken", observation
        assert classify_ending(env.trajectory.termination) == "agent" and reward == 0.0
        assert "/usr/bin/bash" in info["error"] and info["report"]["status"] == "graded"
    finally:
        env.close()


def test_an_agent_that_makes_bash_print_nothing_ends_its_own_episode(task):
    """Red team rt3, b2: bash replaced by a program that prints nothing makes every read the host takes come
    back empty (`OutputLost`, which alone is the engine's fault); the engine's list of changes shows the agent
    replaced bash, so the submission ends as the agent's doing (`sandbox_broken`), never as ours."""
    from swe_env.errors import classify_ending

    env = SWEEnv(tasks=[task])
    try:
        env.reset(options={"task_id": task.id})
        env.step({"tool": "bash", "command": "B=$(readlink -f /bin/bash); mv $B $B.real && cp /bin/true $B; echo done"})
        observation, reward, _terminated, truncated, info = env.step({"tool": "submit"})
        assert env.trajectory.termination == "sandbox_broken", observation
        assert classify_ending(env.trajectory.termination) == "agent" and reward == 0.0
        assert "bash" in info["error"]
    finally:
        env.close()


_END_MAIN_PROCESS = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
GETREGS, SETREGS, ATTACH, DETACH = 12, 13, 16, 17
target = next(int(pid) for pid in os.listdir("/proc") if pid.isdigit() and int(pid) != os.getpid()
              and b"swe-env-main" in open(f"/proc/{pid}/cmdline", "rb").read())
class Regs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_ulonglong) for name in (
        "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss fs_base gs_base "
        "ds es fs gs").split()]
if libc.ptrace(ATTACH, target, None, None) != 0:
    sys.exit("attach failed")
os.waitpid(target, 0)
regs = Regs()
libc.ptrace(GETREGS, target, None, ctypes.byref(regs))
regs.orig_rax, regs.rdi, regs.rax = 231, 0, ctypes.c_ulonglong(-512).value  # exit_group(0) when wait4 restarts
libc.ptrace(SETREGS, target, None, ctypes.byref(regs))
libc.ptrace(DETACH, target, None, None)
print("made it exit")
"""


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the ptrace register layout written here is x86_64's")
def test_an_agent_that_makes_the_main_process_exit_0_ends_its_own_episode(task):
    """Red team rt3, b3: a ptrace of the container's main process (same user, no capability needed) makes it
    exit 0, which the engine records as a `die` with exit code 0 and no kill, as when the TTL runs out; long
    before the TTL, that is a process inside the container: the agent's `sandbox_killed`, never ours."""
    from swe_env.errors import classify_ending

    env = SWEEnv(tasks=[task])
    try:
        env.reset(options={"task_id": task.id})
        env.step({"tool": "create", "path": "end_main.py", "content": _END_MAIN_PROCESS})
        observation, _reward, terminated, truncated, info = env.step({"tool": "bash", "command": "python end_main.py; sleep 5"})
        for _ in range(5):
            if terminated or truncated:
                break
            observation, _reward, terminated, truncated, info = env.step({"tool": "bash", "command": "echo still here"})
        assert truncated and env.trajectory.termination == "sandbox_killed", (observation, env.trajectory.termination)
        assert classify_ending(env.trajectory.termination) == "agent"
        assert "exit code 0" in info["error"]
    finally:
        env.close()


def _until_dead(box, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while box.alive():
        assert time.monotonic() < deadline, f"the container still runs after {seconds} s"
        time.sleep(0.2)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the ptrace register layout written here is x86_64's")
def test_an_exit_0_before_the_ttl_is_the_agents_however_late_the_host_reads_it(task, image):
    """b3 judged by the engine's clock: the main process made to exit 0 a second into a TTL of 120 s is the
    agent's even when the host reads the evidence long after (here: its own count of the container's life says
    200 s; before, the host's count decided, and past the TTL less 30 s it took the death for the TTL's, ours)."""
    with Sandbox.for_task(task, image, "episode", ttl_seconds=120) as box:
        box.write_file("/tmp/end_main.py", _END_MAIN_PROCESS.encode())
        box.exec("(sleep 1; python /tmp/end_main.py) >/dev/null 2>&1 &", timeout=30)
        _until_dead(box, 60)
        box.life.started_at -= 200  # the host's count of the container's life, as a read 200 s late would see it
        cause = box.life.stopped_from_inside()
        assert cause is not None and "exit code 0" in cause and "into a time to live of 120 s" in cause, cause


def test_a_main_process_that_ends_at_its_ttl_is_ours_whatever_the_hosts_count(task, image):
    """The other side of b3: the TTL running out (exit 0) is ours, by the engine's records of the start and the
    death, even when the host's own count says the container lived no time at all."""
    with Sandbox.for_task(task, image, "episode", ttl_seconds=12) as box:
        _until_dead(box, 90)
        box.life.started_at = time.monotonic()
        assert box.life.stopped_from_inside() is None


def test_an_agent_that_moves_the_work_directory_away_ends_its_own_episode(task):
    """Red team rt3, b1: with the work directory moved away no shell can start there again; the engine's list
    of changes shows it deleted, so the episode is the agent's doing (`sandbox_broken`), never ours."""
    from swe_env.errors import classify_ending

    env = SWEEnv(tasks=[task])
    try:
        env.reset(options={"task_id": task.id})
        workdir = task.environment.workdir
        observation, reward, _terminated, truncated, info = env.step({"tool": "bash", "command": f"cd / && mv {workdir} {workdir}.gone && exit"})
        assert truncated and env.trajectory.termination == "sandbox_broken", observation
        assert classify_ending(env.trajectory.termination) == "agent" and reward == 0.0
        assert workdir in info["error"]
    finally:
        env.close()


@pytest.mark.parametrize("replace", ["echo gone > {w}", "ln -s /etc/hostname {w}", "ln -s /nowhere {w}"])
def test_an_agent_that_replaces_the_work_directory_ends_its_own_episode(task, replace):
    """b1's other form: the work directory replaced by a file (or a link to no folder). The engine's list of changes
    shows it only as changed, as a folder whose files changed; its stat through the engine says it is no folder, so
    the episode is the agent's doing (`sandbox_broken`), never ours."""
    from swe_env.errors import classify_ending

    env = SWEEnv(tasks=[task])
    try:
        env.reset(options={"task_id": task.id})
        workdir = task.environment.workdir
        command = f"cd / && rm -rf {workdir} && {replace.format(w=workdir)} && exit"
        observation, reward, _terminated, truncated, info = env.step({"tool": "bash", "command": command})
        for _ in range(3):
            if truncated:
                break
            observation, reward, _terminated, truncated, info = env.step({"tool": "bash", "command": "echo still here"})
        assert truncated and env.trajectory.termination == "sandbox_broken", (observation, env.trajectory.termination)
        assert classify_ending(env.trajectory.termination) == "agent" and reward == 0.0
        assert workdir in info["error"]
    finally:
        env.close()


def test_a_work_directory_linked_to_a_folder_is_not_evidence(task, image):
    """A link to a folder still lets every shell start there: the engine's stat follows it, and nothing is charged."""
    with Sandbox.for_task(task, image, "episode") as box:
        workdir = task.environment.workdir
        box.exec(f"cd / && mv {workdir} {workdir}.real && ln -s {workdir}.real {workdir}", timeout=60, user="root")
        assert workdir not in box.life.altered_programs()
        box.exec(f"rm {workdir} && echo x > {workdir}", timeout=60, user="root")
        assert workdir in box.life.altered_programs()


@pytest.mark.parametrize(
    "command, folder",
    [
        ("rm /bin 2>/dev/null || rm -rf /bin; echo removed", "/bin"),
        ("mv /usr/lib/x86_64-linux-gnu /usr/lib/moved 2>/dev/null || mv /usr/lib/aarch64-linux-gnu /usr/lib/moved", "/usr/lib/"),
    ],
)
def test_an_agent_that_removes_the_folder_of_the_host_programs_ends_its_own_episode(task, command, folder):
    """Red team rt4, e1: `rm /bin` (the merged-/usr link) breaks every program the host runs by its path without one
    of them changed; the engine's change list shows the folder on their way deleted, so the submission that can no
    longer be taken ends as the agent's doing (`sandbox_broken`), never as ours (`sandbox_died`, retried)."""
    from swe_env.errors import classify_ending

    env = SWEEnv(tasks=[task])
    try:
        env.reset(options={"task_id": task.id})
        observation, reward, _terminated, truncated, info = env.step({"tool": "bash", "command": command})
        if not truncated:  # the shell still ran (rm /bin): the submission's diff is what fails
            observation, reward, _terminated, truncated, info = env.step({"tool": "submit"})
        assert truncated and env.trajectory.termination == "sandbox_broken", (observation, env.trajectory.termination)
        assert classify_ending(env.trajectory.termination) == "agent" and reward == 0.0
        assert folder in info["error"]
    finally:
        env.close()


# A detached process that seizes the container's main bash with ptrace and lets it run on with every signal dropped:
# the SIGUSR1 the host's stop sends never reaches its trap (red team rt6b, A1 and A2).
_HOLD_MAIN_PROCESS = r"""
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
def command(pid):
    return open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
target = next(int(pid) for pid in os.listdir("/proc") if pid.isdigit() and int(pid) != os.getpid()
              and command(pid)[0].endswith(b"bash") and b"swe-env-main" in command(pid))
if libc.ptrace(0x4206, target, None, None) == 0:  # PTRACE_SEIZE: the main process goes on running
    status = ctypes.c_int()
    while True:
        if libc.waitpid(target, ctypes.byref(status), 0x40000000) < 0:
            time.sleep(0.2)
        elif status.value & 0xFF == 0x7F:
            libc.ptrace(7, target, None, None)  # PTRACE_CONT: the signal that stopped it dropped
"""

# Imported by the tests: starts the holder above, detached, once per container, and waits until it holds.
_HOLD_ON_IMPORT = f"""
def _hold_main_process():
    import os, subprocess, sys, time
    if not os.path.exists("/tmp/held"):
        open("/tmp/held", "w").close()
        subprocess.Popen([sys.executable, "-I", "-S", "-c", {_HOLD_MAIN_PROCESS!r}], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env={{}})
        for _ in range(100):
            if any(pid.isdigit() and pid != "1" and b"swe-env-main" in open("/proc/%s/cmdline" % pid, "rb").read()
                   and "TracerPid:\\t0\\n" not in open("/proc/%s/status" % pid).read() for pid in os.listdir("/proc")):
                break
            time.sleep(0.1)


_hold_main_process()
"""


def test_code_under_test_that_keeps_its_processes_from_being_stopped_is_graded_as_the_models(task, image):
    """Red team rt6b, A1: the patch's code holds the main bash with a ptrace, so the stop after the run cannot end
    anything. With the real fix too: not an infrastructure failure (withheld) but the model's, graded with every
    listed test missing (-1 signed), the cause named; the container is killed through the engine."""
    _alone, with_fix = _with_code(image, task, _HOLD_ON_IMPORT)
    report = Grader(reward_mode="signed").grade(task, with_fix, image=image)
    assert report.status == "graded" and not report.infrastructure_failure, (report.status, report.error)
    assert report.reward == -1.0 and not report.resolved
    assert "kept its processes from being stopped" in (report.error or "") and "outlived every stop" in (report.error or ""), report.error
    assert set(report.test_results.values()) == {"missing"}


def test_an_agent_that_keeps_its_processes_from_being_stopped_ends_its_own_episode(task):
    """Red team rt6b, A2: the agent holds the main bash with a ptrace, then prints bash's pid-limit message so the
    shell takes its fork bomb's way out; the stop fails, and the episode ends as the agent's (`sandbox_killed`,
    scored: -1 signed), not `sandbox_died` (ours: retried, dropped from exports)."""
    env = SWEEnv(tasks=[task], reward_mode="signed")
    try:
        env.reset(options={"task_id": task.id})
        env.step({"tool": "create", "path": "hold.py", "content": _HOLD_MAIN_PROCESS})
        env.step({"tool": "bash", "command": "(setsid python hold.py </dev/null >/dev/null 2>&1 &); sleep 3"})
        observation, reward, terminated, truncated, info = env.step(
            {"tool": "bash", "command": "echo 'bash: fork: retry: Resource temporarily unavailable'"}
        )
        assert (terminated or truncated) and env.trajectory.termination == "sandbox_killed", (observation, env.trajectory.termination)
        assert classify_ending(env.trajectory.termination) == "agent" and reward == -1.0
        assert "could not be stopped" in info["error"], info["error"]
    finally:
        env.close()


def test_an_agent_that_breaks_what_the_engine_reads_for_an_exec_ends_its_own_episode(task):
    """Red team rt6b, A4: `/etc/passwd` made a folder, which runc reads for every exec's user, so no shell can start
    again; no listed program changed. The engine starts the same shell in a fresh container of the image at that
    moment, so the container's own state, the agent's doing, stops it: `sandbox_broken` (scored, -1 signed), not
    `sandbox_died` (ours)."""
    env = SWEEnv(tasks=[task], reward_mode="signed")
    try:
        env.reset(options={"task_id": task.id})
        env.step({"tool": "bash", "command": "mv /etc/passwd /etc/passwd.saved && mkdir /etc/passwd"})
        observation, reward, terminated, truncated, info = env.step({"tool": "bash", "command": "exit"})
        for _ in range(3):
            if terminated or truncated:
                break
            observation, reward, terminated, truncated, info = env.step({"tool": "bash", "command": "echo still here"})
        assert env.trajectory.termination == "sandbox_broken", (observation, env.trajectory.termination, info.get("error"))
        assert classify_ending(env.trajectory.termination) == "agent" and reward == -1.0
        assert "fresh container" in info["error"], info["error"]
    finally:
        env.close()
