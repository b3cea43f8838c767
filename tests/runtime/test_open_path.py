"""The open path on the real engine: the episode's first shell comes with its container (the main process
starts it on the container's attached stdio, no exec), behaves as an exec'd shell does, and every way a
shell ends still leads to a new one; an open the engine fails transiently is tried once more in a new
container; nothing a container writes to its stdout lands on the host's disk."""

from __future__ import annotations

import uuid

import pytest

from swe_env.data.task import Limits
from swe_env.runtime import engine, pool
from swe_env.runtime.lifecycle import SandboxError
from swe_env.runtime.sandbox import Sandbox
from swe_env.runtime.shell import _START_TIMEOUT, _START_TIMEOUT_MAX, ShellError, ShellSession, start_timeout
from swe_env.runtime.spec import SandboxSpec

from ..helpers import fork_bomb_until_stopped, shells_of_ours

# What may differ between two bash processes of one container whatever started them.
_PER_PROCESS = ("_=", "OLDPWD=")
# The shell's environment, credentials, limits, options and the signals it ignores or blocks, and those a
# command it runs starts with. (The signals the attached bash catches differ: with its EXIT trap bash
# catches the fatal ones to run the trap, then dies of them as before; a command it runs catches none.)
_DESCRIBE = (
    "env | sort; grep -E '^(Sig(Ign|Blk)|Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd)|NoNewPrivs):' /proc/$$/status; "
    "grep -E '^Sig(Ign|Blk|Cgt):' /proc/self/status; "
    'ulimit -a; umask; pwd; echo "shlvl=$SHLVL opts=$- $SHELLOPTS"; trap -p | grep -v SWE'
)


def _spec(image, task, probe: str, **changes) -> SandboxSpec:
    limits = Limits(command_timeout=20).model_copy(update=changes.pop("limits", {}))
    return SandboxSpec.of(image, limits, task.environment.workdir, labels={"probe": probe}, env={"TASK_VAR": "x y"}, **changes)


def _left(docker_client, probe: str) -> list[str]:
    found = docker_client.api.containers(all=True, filters={"label": f"swe_env.probe={probe}"})
    return [c["Names"][0].lstrip("/") for c in found if c.get("State") != "removing"]


def _described(session: ShellSession) -> list[str]:
    output = session.run(_DESCRIBE, timeout=20).output
    return [line for line in output.splitlines() if not line.startswith(_PER_PROCESS)]


# ---------------------------------------------------------------- pure


def test_the_start_timeout_grows_with_the_engines_evident_load_and_stays_bounded():
    assert start_timeout() == _START_TIMEOUT
    assert start_timeout(0.5, 1.0) == _START_TIMEOUT  # a machine at ease
    assert start_timeout(5.0, 1.0) == 20.0  # the engine took 5 s to start it: 4 times that
    assert start_timeout(0.5, 40.0) == 50.0  # 80 runnable per 2 cores
    assert start_timeout(100.0, 500.0) == _START_TIMEOUT_MAX  # never unbounded


def test_only_the_engines_passing_trouble_is_tried_again():
    assert pool.transient(ShellError("the shell did not answer"))
    assert pool.transient(SandboxError("500 Could not kill running container", transient=True))
    assert not pool.transient(SandboxError("image x does not exist"))
    assert not pool.transient(KeyboardInterrupt())
    assert not pool.transient(ValueError("a bug of ours"))


# ---------------------------------------------------------------- the attached first shell


def test_the_first_shell_comes_with_the_container_and_is_as_an_exec_shell(image, task, docker_client):
    probe = uuid.uuid4().hex[:12]
    box = pool.start(_spec(image, task, probe))
    try:
        shell = box.shell
        assert shell is not None and shell.attached
        parent = box.run("cat /proc/$PPID/cmdline | tr '\\0' ' '").output
        assert "swe-env-main" in parent, parent  # the container's main process started it: no exec
        # An exec'd shell in the same container, started the way every later shell is.
        other = ShellSession(engine.client().api, box.id, box.workdir, dict(box.spec.env))
        other.start()
        try:
            assert not other.attached
            assert _described(shell) == _described(other)
        finally:
            other.close()
        assert box.run("echo $TASK_VAR; echo $PAGER").output == "x y\ncat\n"
        # Nothing inside keeps a log on the host: the engine's log driver is none.
        attrs = docker_client.api.inspect_container(box.id)
        assert attrs["HostConfig"]["LogConfig"]["Type"] == "none" and not attrs["LogPath"]
        # State survives, a timeout kills only the command, the session goes on attached.
        box.run("cd /tmp && export KEEP=yes")
        slow = box.run("echo started; sleep 60; echo never", timeout=1.5)
        assert slow.timed_out and not slow.restarted and "started" in slow.output and "never" not in slow.output
        after = box.run("pwd; echo $KEEP")
        assert after.output == "/tmp\nyes\n" and shell.attached, after
    finally:
        box.close()
    assert _left(docker_client, probe) == []


@pytest.mark.parametrize("ending", ["exit", "kill", "exec", "stuck"])
def test_every_end_of_the_attached_shell_leads_to_a_new_shell(image, task, docker_client, ending):
    """`exit` (its EXIT trap says so: its stream does not end with it), SIGKILL (the probe finds it gone),
    `exec` (the probe finds another program), a builtin loop past its timeout (every process stopped): each
    is noticed, and the next shell is an exec'd one with the files kept."""
    probe = uuid.uuid4().hex[:12]
    box = pool.start(_spec(image, task, probe))
    try:
        box.run("echo kept > /tmp/keep.txt; cd /tmp")
        command, timeout = {"exit": ("exit 7", 20), "kill": ("kill -9 $$", 20), "exec": ("exec sleep 60", 20), "stuck": ("while :; do :; done", 1)}[
            ending
        ]
        result = box.run(command, timeout=timeout)
        assert result.restarted and result.exit_code is None, result
        assert any("new shell" in note for note in result.notes), result.notes
        if ending != "stuck":
            assert not result.timed_out, result
        after = box.run("pwd; cat /tmp/keep.txt")
        assert after.output == f"{task.environment.workdir}\nkept\n" and not box.shell.attached, after
    finally:
        box.close()
    assert _left(docker_client, probe) == []


def test_a_fork_bomb_in_the_attached_shell_is_stopped_and_the_session_recovers(image, task, docker_client):
    probe = uuid.uuid4().hex[:12]
    box = pool.start(_spec(image, task, probe, limits={"pids": 64, "command_timeout": 5}))
    try:
        container_id = box.id
        fork_bomb_until_stopped(box)
        # The same container; its main process waits out the TTL (one sleep), the attached shell is gone.
        assert box.id == container_id and box.alive()
        assert box.exec("grep -lx sleep /proc/[0-9]*/comm | wc -l").stdout.strip() == "1"
        # Exactly one bash of ours runs: the session's new shell, started by exec (parent 0 in the container's pid
        # namespace). The attached shell, a child of the main process, died with the bomb; the recovery stopped every
        # process once and started one shell, and the memory note's count was read on the host, not through a
        # private shell started for it.
        assert shells_of_ours(box) == {str(box.shell.pid): "0"}
    finally:
        box.close()
    assert _left(docker_client, probe) == []


def test_a_shell_as_another_user_is_an_exec(image, task, docker_client):
    probe = uuid.uuid4().hex[:12]
    box = pool.start(_spec(image, task, probe, user="nobody"))
    try:
        assert box.shell is not None and not box.shell.attached
        assert box.run("id -un").output == "nobody\n"
    finally:
        box.close()
    assert _left(docker_client, probe) == []


def test_stopping_every_process_before_the_first_shell_leaves_no_stale_stream(image, task, docker_client):
    probe = uuid.uuid4().hex[:12]
    box = Sandbox.of(_spec(image, task, probe)).start(shell=True)
    try:
        box.stop_all_processes()  # the attached bash is killed with the rest before anyone took it
        assert box.run("echo fresh").output == "fresh\n"
        assert not box.shell.attached
    finally:
        box.close()
    assert _left(docker_client, probe) == []


def test_nothing_written_to_the_containers_stdout_lands_on_the_host(image, task, docker_client):
    """Before, `/proc/1/fd/1` led to the engine's json log on the host's disk, outside every limit."""
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        attrs = docker_client.api.inspect_container(box.id)
        assert attrs["HostConfig"]["LogConfig"]["Type"] == "none" and not attrs["LogPath"]
        wrote = box.run("head -c 5000000 /dev/zero > /proc/1/fd/1 && echo wrote")
        assert wrote.output == "wrote\n", wrote


# ---------------------------------------------------------------- the open's one retry


def test_an_open_the_engine_fails_transiently_is_tried_in_a_new_container(image, task, docker_client, monkeypatch):
    """The first shell fails as a starved engine's does (our own code made to fail, the engine real): the
    failed container is removed and the open succeeds in a new one."""
    probe = uuid.uuid4().hex[:12]
    failing: list[str] = []
    original = Sandbox.start_shell

    def first_fails(self):
        if not failing:
            failing.append(self.id)
            raise ShellError(f"the shell in container {self.id[:12]} did not answer: ''")
        return original(self)

    monkeypatch.setattr(Sandbox, "start_shell", first_fails)
    before = pool.retried()
    box = pool.start(_spec(image, task, probe))
    try:
        assert pool.retried() == before + 1 and failing and box.id != failing[0]
        assert (
            not docker_client.api.containers(all=True, filters={"id": failing[0]})
            or docker_client.api.inspect_container(failing[0])["State"]["Status"] == "removing"
        )
        assert box.run("echo second").output == "second\n"
    finally:
        box.close()
    assert _left(docker_client, probe) == []


def test_a_missing_image_is_not_tried_again(task, docker_client):
    before = pool.retried()
    with pytest.raises(SandboxError, match="does not exist"):
        pool.start(SandboxSpec.of(f"swe-env/no-such-image:{uuid.uuid4().hex[:8]}", Limits(), task.environment.workdir))
    assert pool.retried() == before
