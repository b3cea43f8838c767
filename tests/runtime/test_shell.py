"""The persistent shell and the sandbox's files, against the real Docker engine."""

from __future__ import annotations

import pytest

from swe_env.data.task import Limits
from swe_env.runtime.sandbox import OutputLost, Sandbox, SandboxError
from swe_env.runtime.streams import HeadTailBytes

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def box(image, task):
    sandbox = Sandbox(image, Limits(command_timeout=20), task.environment.workdir, output_limit=2000)
    with sandbox:
        yield sandbox


def test_state_survives_between_commands(box):
    assert box.run("cd /tmp && export SWE_X=42 && greet() { echo hi $1; }").exit_code == 0
    result = box.run('pwd; echo "$SWE_X"; greet you')
    assert result.output.splitlines() == ["/tmp", "42", "hi you"]
    box.run("cd /testbed")


def test_one_off_processes_keep_streams_exit_code_and_timeout(box):
    # The end token that guards against output the engine loses never shows in the result.
    result = box.exec("printf 'a\\nb'; printf err >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr, result.output_lost) == (3, "a\nb", "err", False)
    assert box.exec(["printf", "%s", "no newline"], idempotent=True).stdout == "no newline"
    timed_out = box.exec("echo started; sleep 30", timeout=1)
    assert timed_out.exit_code == 124 and timed_out.stdout == "started\n"
    # Killed by a signal: the exit code says so, and no note of the wrapper's reaches the output.
    killed = box.exec("echo before; kill -9 $$")
    assert (killed.exit_code, killed.stdout, killed.stderr) == (137, "before\n", "")
    # A program, not a builtin: `exec` cannot replace the wrapper and lose the end token.
    assert not box.exec(["exec", "true"]).output_lost


def test_output_the_engine_loses_is_noticed(box, monkeypatch):
    # Docker 20.10 under load sometimes returns none of a quick process's output (exit code
    # intact). Here the real engine runs every command; its first answer is emptied, as the
    # engine does when it happens.
    real_exec, calls = box.executor._exec_bounded, []

    def losing_first_answer(*args, **kwargs):
        exit_code, streams = real_exec(*args, **kwargs)
        calls.append(1)
        empty = (HeadTailBytes(1024), HeadTailBytes(1024))
        return (exit_code, empty) if len(calls) == 1 else (exit_code, streams)

    monkeypatch.setattr(box.executor, "_exec_bounded", losing_first_answer)
    read = box.exec("git rev-parse --is-inside-work-tree", idempotent=True)
    assert (read.stdout, read.output_lost, len(calls)) == ("true\n", False, 2)  # a read is run again
    calls.clear()
    write = box.exec("echo changed >> lost-output.txt; echo done")
    assert write.output_lost and write.exit_code == 0 and len(calls) == 1  # anything else only once
    assert box.exec("cat lost-output.txt; rm lost-output.txt").stdout == "changed\n"


def test_output_written_into_from_inside_is_never_the_engines_loss(box, monkeypatch):
    """Bytes after the closing token (a process writing into the stream through /proc) are dropped;
    bytes before the opening one make a SandboxError, never `OutputLost` (ours)."""
    real_exec = box.executor._exec_bounded
    where = ["after"]

    def sprayed(*args, **kwargs):
        exit_code, streams = real_exec(*args, **kwargs)
        if where[0] == "after":
            streams[0].add(b"sprayed")
            return exit_code, streams
        before = HeadTailBytes(streams[0].head_limit * 2)
        before.add(b"sprayed" + streams[0].value()[0])
        return exit_code, (before, streams[1])

    monkeypatch.setattr(box.executor, "_exec_bounded", sprayed)
    assert box.exec("echo out", idempotent=True).stdout == "out\n"
    where[0] = "before"
    with pytest.raises(SandboxError, match="not what its wrapper wrote") as raised:
        box.exec("echo out", idempotent=True)
    assert not isinstance(raised.value, OutputLost)


def test_exit_code_and_stderr_are_reported(box):
    result = box.run("echo out; echo err >&2; exit_status() { return 3; }; exit_status")
    assert result.exit_code == 3
    assert "out" in result.output and "err" in result.output


def test_stdin_is_devnull_so_readers_end_at_once(box):
    result = box.run("cat; read line; python3 -c 'import sys; print(len(sys.stdin.read()))'", timeout=10)
    assert not result.timed_out
    assert result.output.strip() == "0"


def test_syntax_error_does_not_break_the_session(box):
    bad = box.run("echo 'unclosed")
    assert bad.exit_code != 0 and not bad.timed_out
    assert box.run("echo fine").output == "fine\n"


def test_timeout_kills_the_command_and_the_session_goes_on(box):
    box.run("export KEEP=yes")
    result = box.run("echo started; sleep 60; echo never", timeout=1.5)
    assert result.timed_out and result.exit_code is None
    assert "started" in result.output and "never" not in result.output
    assert any("timed out" in note for note in result.notes)
    after = box.run("echo $KEEP")
    assert after.output.strip() == "yes" and not after.restarted


def test_builtin_loop_timeout_restarts_the_shell(box):
    result = box.run("while :; do :; done", timeout=1)
    assert result.timed_out and result.restarted
    assert box.run("echo alive").output.strip() == "alive"


def test_exit_restarts_the_session(box):
    result = box.run("cd /tmp; exit 7")
    assert result.restarted
    assert any("new shell" in note for note in result.notes)
    assert box.run("pwd").output.strip() == "/testbed"


def test_huge_output_is_cut_to_head_and_tail(box):
    result = box.run("seq 1 200000")
    assert result.exit_code == 0
    assert result.output.startswith("1\n2\n3\n")
    assert result.output.endswith("199999\n200000\n")
    assert result.cut_chars > 1_000_000
    assert len(result.output) < 2200


def test_sentinel_text_in_output_and_background_jobs(box):
    result = box.run("printf '__SWE_ENV_DONE_deadbeef_0__\\n'; sleep 100 & echo bg")
    assert "__SWE_ENV_DONE_deadbeef_0__" in result.output and "bg" in result.output
    assert result.exit_code == 0 and not result.timed_out


def test_binary_garbage_and_ansi_are_cleaned(box):
    result = box.run(r"printf '\xff\xfe ok \033[31mred\033[0m\n'")
    assert "ok red" in result.output and "\x1b" not in result.output and "\ufffd" in result.output


def test_pagers_never_block(box):
    result = box.run("echo $PAGER $GIT_PAGER $TERM; git log -1 --format=%H | wc -c", timeout=10)
    assert result.output.splitlines()[0] == "cat cat dumb"


def test_files_round_trip_bytes_and_mode(box):
    box.write_file("bin/tool.sh", b"#!/bin/sh\necho \xff\n", mode=0o755)
    data, mode = box.read_file("/testbed/bin/tool.sh")
    assert data == b"#!/bin/sh\necho \xff\n" and mode & 0o777 == 0o755
    assert box.run("./bin/tool.sh | od -An -tx1 | head -1").output.split()[:2] == ["ff", "0a"]
    with pytest.raises(FileNotFoundError):
        box.read_file("nope.txt")
    with pytest.raises(IsADirectoryError):
        box.read_file("bin")
    box.run("ln -s loop_b loop_a && ln -s loop_a loop_b && ln -s /nowhere dangling && mkfifo fifo")
    for name in ("loop_a", "dangling"):
        with pytest.raises(FileNotFoundError):
            box.read_file(name)
    with pytest.raises(OSError, match="not a regular file"):
        box.read_file("fifo")
    box.run("rm -rf bin loop_a loop_b dangling fifo")


def test_diff_includes_new_and_binary_files_and_leaves_index_alone(box, task):
    box.write_file("notes.txt", b"new file\n")
    box.write_file("blob.bin", bytes(range(256)))
    box.run("git add notes.txt")
    diff = box.diff(task.base_commit)
    assert "+++ b/notes.txt" in diff and "GIT binary patch" in diff
    assert box.run("git diff --cached --name-only").output.strip() == "notes.txt"
    box.run("git reset -q && rm -f notes.txt blob.bin")
    assert box.diff(task.base_commit) == ""


def test_container_has_limits_and_no_network(box, docker_client):
    attrs = docker_client.api.inspect_container(box.id)
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == 2 * 1024**3
    assert host["PidsLimit"] == 512
    assert host["NanoCpus"] == 1_000_000_000
    assert not host["Privileged"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert attrs["Config"]["Labels"]["swe_env.managed"] == "1"
    result = box.run("python3 -c \"import socket; socket.create_connection(('deb.debian.org', 80), timeout=3)\"")
    assert result.exit_code != 0


def test_close_removes_the_container(image, task, docker_client):
    sandbox = Sandbox(image, Limits(), task.environment.workdir).start()
    container_id = sandbox.id
    sandbox.run("echo hi")
    sandbox.close()
    sandbox.close()  # twice is fine
    assert not docker_client.containers.list(all=True, filters={"id": container_id})


def test_exec_replacing_the_shell_restarts_the_session(box):
    box.run("export GONE=1")
    result = box.run("exec sleep 60", timeout=30)
    assert result.restarted and not result.timed_out
    assert any("replaced the shell" in note for note in result.notes)
    after = box.run('echo "[$GONE]"; echo $BASH_VERSION | cut -c1')
    assert after.output.splitlines() == ["[]", "5"]
    # `exec sh` reads its stdin, /dev/null, and ends at once: the session restarts too.
    assert box.run("exec sh", timeout=30).restarted
    assert box.run("echo ok").output == "ok\n"


def test_gigabytes_of_output_stay_in_bounded_memory(box):
    import tracemalloc

    tracemalloc.start()
    try:
        result = box.run("yes | head -c 200000000; echo done", timeout=120)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0 and result.output.endswith("done\n")
    assert result.cut_chars > 199_000_000
    assert peak < 8 * 1024 * 1024, f"peak Python allocation {peak / 1e6:.1f} MB while reading 200 MB of output"


def test_large_payloads_take_the_archive_path_and_keep_mode(box):
    big = bytes(range(256)) * 400  # 100 KB, above the inline limit
    box.write_file("big.bin", big, mode=0o750)
    data, mode = box.read_file("big.bin")
    assert data == big and mode == 0o750
    box.replace_bytes("big.bin", 10, 20, b"x" * 50_000)
    data, mode = box.read_file("big.bin")
    assert data == big[:10] + b"x" * 50_000 + big[20:] and mode == 0o750
    box.replace_bytes("big.bin", 0, 10, b"head")
    assert box.read_file("big.bin")[0][:4] == b"head"
    box.run("rm -f big.bin")


def test_several_files_go_in_one_archive_and_one_step(box, monkeypatch):
    """`Files.write_many` (the grader's recorder files): one archive whatever their sizes, each file in place with
    its folders, an existing file's mode kept, a new one 644, nothing staged left in /tmp."""
    box.write_file("/tmp/many/kept.sh", b"old", mode=0o750)
    puts: list[int] = []
    original = type(box.container).put_archive

    def counted(container, path, data):
        puts.append(len(data))
        return original(container, path, data)

    monkeypatch.setattr(type(box.container), "put_archive", counted)
    files = {
        "/tmp/many/a/big.bin": bytes(range(256)) * 400,
        "/tmp/many/b/c/small.txt": b"small\n",
        "/tmp/many/kept.sh": b"new",
        "/tmp/many/empty": b"",
    }
    box.files.write_many(files)
    assert len(puts) == 1
    for path, data in files.items():
        assert box.read_file(path)[0] == data
    assert box.read_file("/tmp/many/kept.sh")[1] == 0o750 and box.read_file("/tmp/many/empty")[1] == 0o644
    assert box.run("ls -a /tmp | grep -c swe-env-upload; rm -rf /tmp/many").output == "0\n"


def test_a_timeout_at_the_very_end_of_a_command_does_not_skip_the_next(box):
    # The abort signal may reach bash just after the command ended; the next line must still run.
    for _ in range(3):
        box.run("sleep 1", timeout=1.0)
        assert box.run("echo second").output == "second\n"


def test_shell_works_when_the_driver_holds_over_a_thousand_descriptors(image, task):
    # A driver holding a thousand live episodes has socket numbers past 1023, which select() refuses
    # ("filedescriptor out of range in select()": 4 of 1,000 opens failed in bench/live.py so).
    import os  # noqa: PLC0415
    import resource  # noqa: PLC0415

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the descriptor limit here is {hard}, too low to pass 1023")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        probe = os.open(os.devnull, os.O_RDONLY)  # the lowest free number: what the shell's socket gets
        os.close(probe)
        assert probe > 1023
        with Sandbox(image, Limits(command_timeout=20), task.environment.workdir) as sandbox:
            assert sandbox.run("echo past-1023").output.strip() == "past-1023"
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
