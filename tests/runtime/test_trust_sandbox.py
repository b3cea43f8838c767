"""Nothing in the agent's container is trusted after the agent acted, and everything the host
reads from it is bounded: attacks from inside the container, on the real engine."""

from __future__ import annotations

import pytest

from swe_env import SWEEnv
from swe_env.build.images import ImageBuilder
from swe_env.runtime.sandbox import MAX_READ_BYTES, DiskLimitExceeded, Sandbox, SandboxError

pytestmark = pytest.mark.docker

MARKERS = "/tmp/marker-* /root/marker-* /testbed/marker-* /marker-*"

# Every way the agent can make git run a program of its choosing: repository config, hooks,
# attributes naming a filter or a diff driver, a global and a system config, a git (and a
# bash and env) earlier on the image's PATH. Each writes a marker (with the id it ran as).
HOSTILE_SETUP = r"""
set -e
mark() { printf '#!/bin/sh\nid -u > /tmp/marker-%s 2>/dev/null; id -u > /testbed/marker-%s 2>/dev/null; cat\n' "$1" "$1"; }
mkdir -p /tmp/evil
for name in clean smudge process ext textconv fsmonitor pager hook attr global system pathgit; do
  mark $name > /tmp/evil/$name; chmod +x /tmp/evil/$name
done
git config filter.evil.clean /tmp/evil/clean
git config filter.evil.smudge /tmp/evil/smudge
git config filter.evil.process /tmp/evil/process
git config filter.evil.required true
git config diff.external /tmp/evil/ext
git config diff.evil.textconv /tmp/evil/textconv
git config core.fsmonitor /tmp/evil/fsmonitor
git config core.pager /tmp/evil/pager
git config core.hooksPath /tmp/evil/hooks
mkdir -p /tmp/evil/hooks .git/hooks
for hook in pre-commit post-index-change post-checkout reference-transaction; do
  cp /tmp/evil/hook /tmp/evil/hooks/$hook; cp /tmp/evil/hook .git/hooks/$hook
done
printf '[filter "attr"]\n\tclean = /tmp/evil/attr\n' > /tmp/evil/attrconfig
git config include.path /tmp/evil/attrconfig
printf '* filter=evil diff=evil\n*.py filter=attr\n' > .gitattributes
printf '* filter=evil\n' > /tmp/evil/attributes
git config core.attributesFile /tmp/evil/attributes
"""

ROOT_ONLY_SETUP = r"""
set -e
printf '[filter "evil"]\n\tclean = /tmp/evil/global\n[core]\n\tfsmonitor = /tmp/evil/global\n' > /root/.gitconfig
printf '[filter "evil"]\n\tclean = /tmp/evil/system\n' >> /etc/gitconfig
for tool in git bash env; do cp /tmp/evil/pathgit /opt/swe-env/venv/bin/$tool; done
"""


def _as_agent(task):
    as_agent = task.model_copy(update={"id": f"{task.id}-as-agent", "environment": task.environment.model_copy(update={"user": "agent"})})
    as_agent._source = task.source
    return as_agent


@pytest.fixture(scope="module")
def agent_task(task):
    return _as_agent(task)


@pytest.fixture(scope="module")
def agent_image(agent_task, docker_client):
    return ImageBuilder().ensure(agent_task)


def _assert_clean_diff(box: Sandbox, task) -> None:
    diff = box.diff(task.base_commit)
    # The work is there, byte for byte (no clean filter rewrote it), and nothing else.
    assert "+++ b/ledger/__init__.py" in diff and "+ADDED_BY_AGENT = 1\n" in diff
    assert "+++ b/notes.txt" in diff and "+plain text\n" in diff
    assert "+++ b/.gitattributes" in diff
    assert "marker-" not in diff
    leftovers = box.exec(f"ls -d {MARKERS} 2>/dev/null; true", user="root").stdout
    assert leftovers == "", f"an agent-configured program ran: {leftovers}"
    # The agent's own git still uses its own setup (its index and config are untouched).
    status = box.run("git -c core.fsmonitor=false -c core.hooksPath=/dev/null diff --cached --name-only")
    assert status.output == "" and status.exit_code == 0


def test_agent_configured_git_programs_never_run_when_the_diff_is_taken_as_non_root(agent_task, agent_image):
    with Sandbox(agent_image, agent_task.limits, agent_task.environment.workdir, user="agent") as box:
        setup = box.run(HOSTILE_SETUP + "\necho 'ADDED_BY_AGENT = 1' >> ledger/__init__.py; echo 'plain text' > notes.txt")
        assert setup.exit_code == 0, setup.output
        # The agent's own git does run them (the attack is real), as the agent.
        box.run("git status >/dev/null 2>&1; git diff >/dev/null 2>&1; true")
        ran = box.exec(f"cat {MARKERS} 2>/dev/null; rm -f {MARKERS}; true", user="root").stdout.split()
        assert ran and set(ran) == {box.exec(["id", "-u", "agent"]).stdout.strip()}
        _assert_clean_diff(box, agent_task)
        # The diff runs as the agent, not as root.
        assert box.exec(["id", "-un"]).stdout.strip() == "agent"


def test_agent_configured_git_programs_never_run_when_the_diff_is_taken_as_root(task, image):
    with Sandbox(image, task.limits, task.environment.workdir) as box:
        setup = box.run(HOSTILE_SETUP + ROOT_ONLY_SETUP + "\necho 'ADDED_BY_AGENT = 1' >> ledger/__init__.py; echo 'plain text' > notes.txt")
        assert setup.exit_code == 0, setup.output
        # A git, bash and env planted first on the image's PATH: the host's commands use absolute paths.
        assert box.run("hash -r; command -v git").output.strip() == "/opt/swe-env/venv/bin/git"
        _assert_clean_diff(box, task)


def test_agent_environment_and_staging_do_not_reach_the_diff(task, image):
    with Sandbox(image, task.limits, task.environment.workdir) as box:
        box.run("echo 'y = 2' >> ledger/__init__.py && git add -A && echo staged > staged.txt && git add staged.txt")
        # An index our git dir cannot use (a split index names a shared file beside it) is rebuilt.
        assert box.run("git -c core.splitIndex=true update-index --split-index && ls .git/sharedindex.*").exit_code == 0
        box.run("export GIT_DIR=/nowhere GIT_WORK_TREE=/tmp GIT_INDEX_FILE=/tmp/idx HOME=/tmp")
        diff = box.diff(task.base_commit)
        assert "+y = 2\n" in diff and "+++ b/staged.txt" in diff
        # The agent's staging is untouched.
        assert box.run("env -u GIT_DIR -u GIT_WORK_TREE -u GIT_INDEX_FILE git diff --cached --name-only").output.split() == [
            "ledger/__init__.py",
            "staged.txt",
        ]


def test_trace_tool_runs_as_the_agent_and_through_the_shells_checks(agent_task, agent_image):
    tight = agent_task.model_copy(update={"limits": agent_task.limits.model_copy(update={"disk": "50m", "command_timeout": 5, "memory": "256m"})})
    tight._source = agent_task.source
    env = SWEEnv(tasks=[tight], tools=["bash", "create", "trace"])
    try:
        env.reset(options={"task_id": tight.id})
        env.step({"tool": "create", "path": "who.py", "content": "import os\nprint('uid', os.getuid())\n"})
        observation, *_rest, info = env.step({"tool": "trace", "command": "python who.py"})
        uid = env.step({"tool": "bash", "command": "id -u"})[0].split()[0]
        assert f"uid {uid}" in observation and uid != "0" and info["exit_code"] == 0, observation
        # A program that outlives the command timeout is killed like a bash command; the episode goes on.
        env.step({"tool": "create", "path": "hang.py", "content": "import time\ntime.sleep(60)\n"})
        observation, reward, terminated, truncated, info = env.step({"tool": "trace", "command": "python hang.py"})
        assert not truncated and info["timed_out"] and info["exit_code"] is None
        assert "timed out" in observation
        # Memory: the kernel's kill is noticed and said.
        env.step({"tool": "create", "path": "hog.py", "content": "b = bytearray(1024 * 1024 * 1024)\n"})
        observation, *_rest, info = env.step({"tool": "trace", "command": "python hog.py"})
        assert "memory limit (256m)" in observation and info["exit_code"] == 137, observation
        # Disk: a traced program that fills the disk ends the episode like one run by bash.
        env.step({"tool": "create", "path": "fill.py", "content": "import time\nopen('/tmp/fill', 'wb').write(b'x' * 80_000_000)\ntime.sleep(1.5)\n"})
        observation, reward, terminated, truncated, info = env.step({"tool": "trace", "command": "python fill.py"})
        assert truncated and reward == 0.0 and env.trajectory.termination == "disk_limit", observation
    finally:
        env.close()


# ---------------------------------------------------------------- bounded reads


def test_a_sparse_huge_file_is_never_read_whole(task, image):
    env = SWEEnv(tasks=[task])
    try:
        env.reset(options={"task_id": task.id})
        env.step({"tool": "bash", "command": "truncate -s 100G huge.txt"})
        observation, *_rest = env.step({"tool": "view", "path": "huge.txt"})
        assert "107374182400 bytes" in observation and "sed -n" in observation
        observation, *_rest = env.step({"tool": "edit", "path": "huge.txt", "old": "a", "new": "b"})
        assert observation.startswith("Error:") and "use bash" in observation
        observation, *_rest = env.step({"tool": "create", "path": "huge.txt", "content": "x"})
        assert "already exists" in observation
        box = env.sandbox
        content = box.read("huge.txt", max_bytes=10)
        assert content.data == b"\0" * 10 and content.size == 100 * 1024**3 and content.truncated
        box.write_file("tail.txt", b"a" * 1000 + b"THE END")
        assert box.read_file("tail.txt", max_bytes=7, tail=True)[0] == b"THE END"
        assert box.read_file("tail.txt", max_bytes=3)[0] == b"aaa"
        assert len(box.read_file("huge.txt")[0]) == MAX_READ_BYTES
        assert box.read("tail.txt").data == b"a" * 1000 + b"THE END" and not box.read("tail.txt").truncated
    finally:
        env.close()


def test_one_off_process_output_is_bounded(task, image):
    with Sandbox(image, task.limits, task.environment.workdir) as box:
        result = box.exec("head -c 50000000 /dev/zero | tr '\\0' x; echo END", max_output=1000, idempotent=True)
        assert result.exit_code == 0 and len(result.stdout) <= 1000 and result.stdout.endswith("END\n")
        assert result.cut > 49_000_000 and not result.output_lost


def test_many_empty_files_count_against_the_disk_limit(task, image):
    tight = task.model_copy(update={"limits": task.limits.model_copy(update={"disk": "500m", "max_steps": 40})})
    env = SWEEnv(tasks=[tight])
    try:
        env.reset(options={"task_id": task.id})
        # 40,000 empty files: no bytes in the writable layer, 40,000 inodes of the host.
        observation, reward, terminated, truncated, info = env.step(
            {"tool": "bash", "command": "mkdir -p /tmp/many && cd /tmp/many && seq 40000 | xargs touch && sleep 1.2"}
        )
        # The count runs in the background (the engine takes about half a second): a later step ends the episode.
        for _ in range(12):
            if truncated:
                break
            observation, reward, terminated, truncated, info = env.step({"tool": "bash", "command": "sleep 0.3"})
        assert truncated and env.trajectory.termination == "disk_limit", observation
        assert "files" in observation
    finally:
        env.close()


def test_folders_nested_deeper_than_the_host_can_name_are_the_containers_doing(task, image):
    """The engine cannot list such a layer (ENAMETOOLONG): that must read as over the limit, never as our failure."""
    with Sandbox(image, task.limits, task.environment.workdir) as box:
        # 25 levels of 200-character names: 5,000 characters, past the host's 4,096 (few levels:
        # bash's `cd` gets slow once its own path is longer than that).
        nest = "cd /tmp && n=$(printf 'd%.0s' $(seq 200)) && for i in $(seq 25); do mkdir $n && cd $n || exit 1; done"
        assert box.exec(["/bin/bash", "-c", nest]).exit_code == 0
        with pytest.raises(DiskLimitExceeded, match="deeper than its host can name"):
            box.check_disk()


# ---------------------------------------------------------------- what reaches the observation


def test_exit_code_is_in_info_and_escape_sequences_in_files_stay_inert(task, image):
    env = SWEEnv(tasks=[task], render_mode="ansi")
    try:
        env.reset(options={"task_id": task.id})
        # A command can print a fake suffix; the real exit code travels in info.
        observation, *_rest, info = env.step({"tool": "bash", "command": "echo '[exit code 0]'; (exit 3)"})
        assert info["exit_code"] == 3 and info["timed_out"] is False
        _obs, *_rest, info = env.step({"tool": "bash", "command": "sleep 5", "timeout": 1})
        assert info["timed_out"] is True and info["exit_code"] is None
        # A file with a window title, a clear screen and a C1 CSI in it.
        env.step({"tool": "bash", "command": r"printf 'a\033]0;owned\007b\033[2J\033[Hc\302\233d\n' > esc.txt"})
        observation, *_rest, info = env.step({"tool": "view", "path": "esc.txt"})
        assert "exit_code" not in info
        assert "\x1b" not in observation and "\x9b" not in observation and "\x07" not in observation
        assert r"a\x1b]0;owned\x07b\x1b[2J\x1b[Hc\x9bd" in observation
        rendered = env.render()
        assert "\x1b" not in rendered and r"\x1b[2J" in rendered
        observation, *_rest = env.step({"tool": "edit", "path": "esc.txt", "old": "d\n", "new": "e\n"})
        assert "\x1b" not in observation and r"\x1b[2J" in observation
    finally:
        env.close()


def test_a_huge_file_in_the_work_tree_is_refused_before_git_reads_it(task, image):
    with Sandbox(image, task.limits, task.environment.workdir) as box:
        box.run("truncate -s 100G sparse.bin && echo 'z = 3' >> ledger/__init__.py")
        with pytest.raises(SandboxError, match="over the diff limit"):
            box.diff(task.base_commit)
        # Ignored files are not the diff's business, however large.
        box.run("mkdir -p build && mv sparse.bin build/ && echo 'build/' >> .gitignore")
        diff = box.diff(task.base_commit)
        assert "+z = 3\n" in diff and "sparse.bin" not in diff
