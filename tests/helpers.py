"""The suite's shared helpers, in one place: test modules import from here, never from each other (or conftest).

Grouped by what they serve: paths and task files; the `swe-env` command; waiting and ports; the server; the
engine's containers; patches an agent would submit; SWE-bench datasets; the OpenAI chat schema. Fixtures live
in conftest.py.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TASKS_DIR = ROOT / "tasks"


# ---------------------------------------------------------------- task files and the command line


@contextmanager
def bench_module(name: str) -> Iterator:
    """A benchmark script of `bench/` imported as a module (its folder on sys.path meanwhile, for its own imports)."""
    import importlib

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "bench"))


def write_task(folder: Path, text: str) -> Path:
    """Write a task.yaml into folder/<name>/ and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "task.yaml"
    path.write_text(text)
    return path


def run_cli(
    *args: str, cwd: Path | str = ROOT, run_id: str | None = None, extra_env: dict[str, str] | None = None, drop_env: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """`swe-env ARGS` as a user runs it, in a process of its own (under `run_id`'s container labels when given;
    `extra_env` added to the environment and `drop_env` taken out of it)."""
    env = {**os.environ, **({"SWE_ENV_RUN_ID": run_id} if run_id else {}), **(extra_env or {})}
    for name in drop_env:
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "swe_env.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=900, env=env)


# ---------------------------------------------------------------- waiting and ports


def free_port() -> int:
    """A loopback port nothing listens on now (for a server a test starts, or a dead endpoint)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answers(url: str, process: subprocess.Popen, seconds: float) -> bool:
    """Poll `url` until it answers (True), or `process` exited or `seconds` passed (False)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return True
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def wait_until(predicate, deadline: float = 60.0, interval: float = 0.25) -> bool:
    """True as soon as predicate() is; False at the deadline (a generous bound, never a measured time)."""
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# ---------------------------------------------------------------- the server

TOKEN = "test-token-" + uuid.uuid4().hex[:12]


def wait_healthy(url: str, deadline: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Poll /health until it answers 200 (or the server process died, or the deadline passed)."""
    import httpx  # the `server` extra: only the tests of the server need it

    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no healthy server at {url} after {deadline:g} s")


@dataclass
class Server:
    url: str
    token: str | None
    run_id: str
    proc: subprocess.Popen

    def headers(self, token: str | None = "same") -> dict[str, str]:
        token = self.token if token == "same" else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def stop(self, docker_client) -> None:
        """SIGTERM, wait, and make sure the server removed every container it started."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        assert wait_until(lambda: not containers_of(docker_client, self.run_id), 30), (
            f"server left containers: {[c.name for c in containers_of(docker_client, self.run_id)]}"
        )


def start_server(*args: str, token: str | None = TOKEN) -> Server:
    """`swe-env serve` over the bundled tasks on a free port, under a run id of its own, once it answers."""
    port = free_port()
    run_id = f"srv-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "SWE_ENV_RUN_ID": run_id, "SWE_ENV_TOKEN": token or ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "swe_env.cli", "serve", "--tasks", str(TASKS_DIR), "--port", str(port), "--log-level", "warning", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc=proc)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return Server(url, token, run_id, proc)


# ---------------------------------------------------------------- the engine's containers


class _Listed:
    """One container as the engine's list call shows it (id, name, state)."""

    def __init__(self, entry: dict):
        self.id, self.status = entry["Id"], entry.get("State", "")
        self.name = (entry.get("Names") or [self.id[:12]])[0].lstrip("/")


def containers_of(docker_client, run_id: str) -> list:
    """The containers labelled with `run_id`, not being removed."""
    # One list call: the SDK's list inspects each container after listing, and one removed in
    # between (the server closing a session meanwhile) made it raise NotFound.
    found = docker_client.api.containers(all=True, filters={"label": f"swe_env.run={run_id}"})
    return [c for c in map(_Listed, found) if c.status != "removing"]


def run_containers(docker_client) -> list[str]:
    """The names of this test run's containers (its `swe_env.run` label), not being removed."""
    from swe_env.runtime import engine

    return [c.name for c in containers_of(docker_client, engine.RUN_ID)]


def container_exists(docker_client, container_id: str) -> bool:
    # sparse: the list call alone, no inspect of each container (which races a removal into NotFound).
    listed = docker_client.containers.list(all=True, sparse=True, filters={"id": container_id})
    return any(c.status != "removing" for c in listed)


def tar_of(files: dict[str, bytes]) -> io.BytesIO:
    """A tar archive holding `files` (name → bytes), for a build context or the engine's archive API."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


# ---------------------------------------------------------------- patches an agent would submit


def added_file(path: str, lines: list[str]) -> str:
    """A diff that adds `path` holding `lines`."""
    body = "".join(f"+{line}\n" for line in lines)
    return f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}"


def diff_after(image, task, script: str) -> str:
    """The diff an agent would submit after running `script` in its own container."""
    from swe_env.data.task import Limits
    from swe_env.runtime.sandbox import Sandbox

    with Sandbox(image, Limits(), task.environment.workdir) as box:
        result = box.run(script, timeout=60)
        assert result.exit_code == 0, result.output
        return box.diff(task.base_commit)


def with_code(image, task, code: str, files: dict[str, str] | None = None) -> tuple[str, str]:
    """The diff of `code` appended to the package's __init__.py (and `files` added), alone and with the task's real fix."""
    from swe_env.data.task import Limits
    from swe_env.runtime.sandbox import Sandbox

    package = task.gold_patch.split("diff --git a/", 1)[1].split("/", 1)[0]
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        for path, text in (files or {}).items():
            box.write_file("/tmp/added", text.encode())
            assert box.run(f"mkdir -p $(dirname {shlex.quote(path)}) && cp /tmp/added {shlex.quote(path)}", timeout=60).exit_code == 0
        box.write_file("/tmp/code.py", code.encode())
        assert box.run(f"cat /tmp/code.py >> {shlex.quote(package)}/__init__.py", timeout=60).exit_code == 0
        alone = box.diff(task.base_commit)
        box.write_file("/tmp/gold.patch", task.gold_patch.encode())
        assert box.run("git apply /tmp/gold.patch", timeout=60).exit_code == 0
        return alone, box.diff(task.base_commit)


def subprocess_diff(task, files: dict[str, str]) -> str:
    """A git diff that replaces `files` in the task's repository at base_commit (made on the host)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "t"
        subprocess.run(["git", "clone", "-q", task.repo, str(tree)], check=True)
        subprocess.run(["git", "-C", str(tree), "checkout", "-q", task.base_commit], check=True)
        for path, text in files.items():
            (tree / path).write_text(text)
        subprocess.run(["git", "-C", str(tree), "add", "-A"], check=True)
        return subprocess.run(["git", "-C", str(tree), "diff", "--cached"], check=True, capture_output=True, text=True).stdout


# ---------------------------------------------------------------- SWE-bench datasets of the bundled tasks

SAMPLE_PIP_PACKAGES = ["pytest==8.3.5"]
"""All the bundled sample repositories' tests need: their env layer is built already, and CI has no PyPI."""
BUNDLED_RECIPES = """\
"*":
  "*": {pip_packages: ["pytest==8.3.5"], install: [], test_command: "python -m pytest -rA -p no:cacheprovider"}
"""
"""The bundled sample repos need only pytest, and their pass_to_pass lists span every test file."""


def write_sample_recipe(path: Path, repo: str, version: str, **fields) -> Path:
    """A `--recipes` file whose one recipe (`repo` at `version`) builds a bundled sample repository's environment
    (`SAMPLE_PIP_PACKAGES`, no install step), with `fields` over it."""
    recipe = {"python": "3.11", "pip_packages": SAMPLE_PIP_PACKAGES, "install": [], **fields}
    path.write_text(yaml.safe_dump({repo: {version: recipe}}))
    return path


def swebench_records(tasks) -> list[dict]:
    """The bundled tasks as SWE-bench instances (repo `swe-env/<name>`; list fields as JSON strings, as on the hub)."""
    return [
        {
            "instance_id": task.id,
            "repo": f"swe-env/{Path(task.repo).stem}",
            "base_commit": task.base_commit,
            "patch": task.gold_patch,
            "test_patch": task.tests.test_patch,
            "problem_statement": task.problem_statement,
            "FAIL_TO_PASS": json.dumps(task.tests.fail_to_pass),
            "PASS_TO_PASS": json.dumps(task.tests.pass_to_pass),
            "version": "0.1",
            "environment_setup_commit": task.base_commit,
        }
        for task in tasks
    ]


def write_swebench_dataset(folder: Path, tasks) -> tuple[Path, Path, Path]:
    """A JSONL dataset, a mirror folder of `owner__name.bundle` files, and a recipes file."""
    mirror = folder / "mirror"
    mirror.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        target = mirror / f"swe-env__{Path(task.repo).name}"
        if not target.exists():
            shutil.copy(task.repo_location(), target)
    dataset = folder / "instances.jsonl"
    dataset.write_text("".join(json.dumps(record) + "\n" for record in swebench_records(tasks)))
    recipes = folder / "recipes.yaml"
    recipes.write_text(BUNDLED_RECIPES)
    return dataset, mirror, recipes


# ---------------------------------------------------------------- the OpenAI chat schema

ROLES = {"system", "user", "assistant", "tool"}


def check_openai_chat(record: dict) -> None:
    """The OpenAI chat-completions message schema, as fine-tuning files use it."""
    assert set(record) >= {"messages"}
    messages = record["messages"]
    assert messages[0]["role"] == "system" and messages[1]["role"] == "user"
    open_calls: set[str] = set()
    for message in messages:
        assert message["role"] in ROLES, message
        if message["role"] == "tool":
            assert isinstance(message["content"], str) and message["tool_call_id"] in open_calls
            open_calls.discard(message["tool_call_id"])
            continue
        assert not open_calls, f"tool calls left unanswered before {message['role']}"
        if message["role"] == "assistant" and "tool_calls" in message:
            assert message["content"] is None or isinstance(message["content"], str)
            for call in message["tool_calls"]:
                assert call["type"] == "function" and isinstance(call["id"], str)
                assert isinstance(call["function"]["name"], str)
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
                open_calls.add(call["id"])
        else:
            assert isinstance(message["content"], str) and message["content"]
    for tool in record.get("tools", []):
        assert tool["type"] == "function" and tool["function"]["parameters"]["type"] == "object"


def corpus_containers() -> list[str]:
    """The corpus containers of this test run still present (removing ones excepted)."""
    from swe_env.runtime import engine

    left = engine.client().containers.list(
        all=True, filters={"label": [f"{engine.MANAGED_LABEL}=1", f"swe_env.run={engine.RUN_ID}", "swe_env.kind=corpus"]}
    )
    return [c.name for c in left if c.status != "removing"]


def attack_code(task, body: str) -> str:
    """An attack's library code with the task's test ids bound (F2P, P2P), as the seal and integrity tests append it."""
    return (
        f"F2P = {list(task.tests.fail_to_pass)!r}\nP2P = {list(task.tests.pass_to_pass)!r}\n"
        "from functools import partial as _functools_partial\n" + body
    )


LIVE_CONFIG = """
import sys as _s
_cfg = None
for _finder in getattr(_s, "meta" + "_path"):
    _cfg = getattr(_finder, "config", None)
    if _cfg is not None:
        break
"""
"""Attack code's first lines: pytest's live config (`_cfg`), found through the import system's finders (red team rt2)."""


def forge_scores_zero(task, image, code: str, flagged: str | tuple[str, ...], files: dict[str, str] | None = None) -> str:
    """Grade `code` (an attack's library code, `attack_code`) appended to the package under reward_policy="strict":
    graded, reward 0 and `flagged` (or one of them) among the tampering flags; the diff of the same code with the
    real fix."""
    from swe_env.grading.grader import Grader

    alone, with_fix = with_code(image, task, attack_code(task, code), files)
    report = Grader(reward_policy="strict").grade(task, alone, image=image)
    assert report.status == "graded" and not report.infrastructure_failure, (report.status, report.error)
    assert report.reward == 0.0, (report.test_results, report.error, report.tampering)  # resolved may say what a flagged run's tests said
    texts = (flagged,) if isinstance(flagged, str) else flagged
    assert any(one in text for one in texts for text in report.tampering), report.tampering
    return with_fix


# A unittest suite with one test of each outcome, for the Django/sympy recorder's tests.
UNITTEST_SUITE = '''\
import unittest


class T(unittest.TestCase):
    def test_ok(self):
        pass

    def test_doc(self):
        """First line of the docstring.

        More text."""

    def test_fail(self):
        self.assertEqual(1, 2)

    def test_error(self):
        raise ValueError("boom")

    @unittest.skip("not here")
    def test_skip(self):
        pass

    @unittest.expectedFailure
    def test_expected(self):
        self.assertTrue(False)

    def test_subtests(self):
        for i in range(2):
            with self.subTest(i=i):
                self.assertEqual(i, 0)
'''


def django_stub(tmp_path):
    """Django's runner module, whose import hands the recorder its key (an empty stand-in here)."""
    (tmp_path / "django" / "test").mkdir(parents=True)
    for init in ("django/__init__.py", "django/test/__init__.py", "django/test/runner.py"):
        (tmp_path / init).write_text("")


class ScriptedModel:
    """A chat-completions endpoint on 127.0.0.1: each POST gets the next scripted (status, body), or what
    `replies` answers when it is a function of the request body (then (status, body, seconds to wait first));
    GET .../models lists `models`."""

    def __init__(self, replies: list[tuple[int, dict]] | Callable[[dict], tuple[int, dict, float]], models: tuple[str, ...] = ()):
        self.replies = replies if callable(replies) else list(replies)
        self.requests: list[dict] = []
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                found = self.path.rstrip("/").endswith("/models") and models
                self._send(
                    200 if found else 404,
                    {"object": "list", "data": [{"id": m, "object": "model"} for m in models]} if found else {"error": "no such route"},
                )

            def do_POST(self):  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                model.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                if callable(model.replies):
                    status, reply, delay = model.replies(body)
                    time.sleep(delay)
                else:
                    status, reply = model.replies.pop(0) if model.replies else (500, {"error": "script exhausted"})
                self._send(status, reply)

            def _send(self, status, reply):
                data = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# Ctrl-C in tests. A pytest started in the background (`cmd &` in a script) has SIGINT ignored; its children
# inherit that, Python leaves an inherited SIG_IGN alone, and `_thread.interrupt_main` does nothing while SIGINT
# is ignored. Tests of what Ctrl-C does set it up as a terminal would.


def ctrl_c_reaches_it() -> None:
    """`preexec_fn` for a child the test will send SIGINT: the default disposition, so the
    child's Python turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def ctrl_c_handled() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in this process meanwhile (main thread only)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def fork_bomb_until_stopped(box, tries: int = 40) -> None:
    """Start a fork bomb in `box`'s shell (which has a small pid limit) and step until the shell stops every
    process and says so (how soon depends on the machine's load); then the bomb is gone and the files are kept."""
    box.run("echo kept > keep.txt")
    # A bomb that keeps at it (the classic `:(){ :|:& };:` sometimes dies out by itself), started in the
    # background, so this step returns at once. No step raises meanwhile.
    box.run("bomb() { bomb | bomb & }; while :; do bomb; done &", timeout=5)
    for _ in range(tries):
        result = box.run("sleep 0.2; echo alive; cat keep.txt", timeout=5)
        if any("process ids" in note or "every process" in note for note in result.notes):
            break
    else:
        raise AssertionError("the bomb never exhausted the pid limit, or it was not noticed")
    after = box.run("echo alive; cat keep.txt", timeout=5)
    assert after.exit_code == 0 and after.output == "alive\nkept\n", after


def shells_of_ours(box) -> dict[str, str]:
    """Every bash the host started in `box` (the agent's and the private one, `/bin/bash --noprofile --norc`): pid ->
    parent pid, in the container's pid namespace (parent 0: started by exec; the main process's pid: its attached one)."""
    listed = box.exec(
        "for p in /proc/[0-9]*; do [ \"$(tr '\\0' ' ' < $p/cmdline)\" = '/bin/bash --noprofile --norc ' ] "
        "&& echo ${p#/proc/} $(awk '/^PPid/ {print $2}' $p/status); done"
    ).stdout
    return dict(line.split() for line in listed.splitlines() if line.strip())


# ---------------------------------------------------------------- red team rt3's c3, one copy for both tests

# c3 (rt3): a child interpreter (no hook) writes pytest's rewrite cache of every test module compiled without asserts.
CACHE_FORGER = r"""
import glob, importlib.util, marshal, os, sys
import pytest
import _pytest.assertion.rewrite as rewrite
root = sys.argv[1]
hashed = "source_hash" in open(rewrite.__file__).read()
tail = ".%s-pytest-%s.pyc" % (sys.implementation.cache_tag, pytest.__version__)
for source in glob.glob(os.path.join(root, "**", "test_*.py"), recursive=True):
    info = os.stat(source)
    with open(source, "rb") as handle:
        text = handle.read()
    code = compile(text, source, "exec", dont_inherit=True, optimize=2)
    folder = os.path.join(os.path.dirname(source), "__pycache__")
    os.makedirs(folder, exist_ok=True)
    if hashed:
        header = b"\3\0\0\0" + importlib.util.source_hash(text)[:8]
    else:
        header = b"\0\0\0\0" + (int(info.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + (info.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    with open(os.path.join(folder, os.path.basename(source)[:-3] + tail), "wb") as handle:
        handle.write(importlib.util.MAGIC_NUMBER + header + marshal.dumps(code))
"""
CACHE_FORGING_LIBRARY = f"""
def _prime_caches():
    import base64, os, subprocess, sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", base64.b64decode({base64.b64encode(CACHE_FORGER.encode()).decode()!r}).decode(), root],
                   check=False)


_prime_caches()
"""


# ---------------------------------------------------------------- the sealed hooks on the host


def sealing_object(sealed_by: str) -> bytes:
    """The shared object `run_sealed_pytest` ships for a run sealed by `native` (skipped when this machine cannot build
    it), or nothing for the pure-Python seal (`python`)."""
    import pytest

    from swe_env.grading import native

    if sealed_by == "python":
        return b""
    built = native.build()
    if built.data is None:
        pytest.skip(f"no native seal on this machine: {built.reason}")
    return built.data


def run_sealed_pytest(
    tmp_path: Path,
    shared_object: bytes,
    files: dict[str, str],
    patched: list[str],
    *,
    changed_lines: dict[str, list[tuple[int, int]]] | None = None,
    runner_is_repo: bool = False,
    runner_places: list[str] = (),
) -> tuple[bytes, bytes]:
    """Run pytest under this interpreter on `files` (`test_it.py` among them) with the grader's start-up module, plugin
    and (when `shared_object` is not empty; else the pure-Python seal seals) native seal, as the grader does in its
    container: what the hooks wrote on the results descriptor, and the key. `patched`, `changed_lines` and
    `runner_places` are project paths, written into the key file as the grader writes them (`seal.key_file`)."""
    from swe_env.grading import native, seal

    reporter = Path(native.__file__).with_name("reporter")
    recorder = tmp_path / "recorder"
    recorder.mkdir(parents=True)
    for name in ("sitecustomize.py", "swe_env_integrity.py", "swe_env_seal.py"):
        shutil.copy(reporter / name, recorder / name)
    if shared_object:
        (recorder / native.FILE_NAME).write_bytes(shared_object)
    project = tmp_path / "project"
    project.mkdir()
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    key = os.urandom(seal.KEY_BYTES)
    key_path = tmp_path / "run.key"
    key_path.write_bytes(
        seal.key_file(
            key,
            [str(project / p) for p in patched],
            runner_is_repo,
            {str(project / p): lines for p, lines in (changed_lines or {}).items()},
            [str(project / p) for p in runner_places],
        )
    )
    read_end, write_end = os.pipe()
    env = {
        **os.environ,
        "PYTHONPATH": str(recorder),
        "SWE_ENV_RESULTS": f"/dev/fd/{write_end}",
        "SWE_ENV_RUNNER": "pytest",
        "SWE_ENV_KEY": str(key_path),
        "PYTEST_ADDOPTS": "-p swe_env_seal -p no:cacheprovider",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "test_it.py"],
        cwd=project,
        env=env,
        pass_fds=[write_end],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 1 << 16):
        chunks.append(chunk)
    os.close(read_end)
    process.wait(timeout=300)
    assert not key_path.exists()  # the hook read and unlinked it
    return b"".join(chunks), key


def git_binary_patch(path: str, data: bytes, old: bytes | None = None, delta: bytes | None = None) -> str:
    """A `GIT binary patch` as git writes one: `path` made to hold `data`, new (`old` None) or from `old`, by a
    `literal` hunk, or by the `delta` given (git's delta format: its source and result sizes, then its
    copy and insert commands), whose result must be `data` for git to take it."""
    import hashlib
    import zlib

    def blob_id(content: bytes) -> str:
        return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()

    def hunk(kind: str, raw: bytes) -> str:
        deflated = zlib.compress(raw, 9)
        lines = []
        for start in range(0, len(deflated), 52):
            chunk = deflated[start : start + 52]
            size = chr(ord("A") + len(chunk) - 1) if len(chunk) <= 26 else chr(ord("a") + len(chunk) - 27)
            lines.append(size + base64.b85encode(chunk, pad=True).decode() + "\n")
        return f"{kind} {len(raw)}\n" + "".join(lines) + "\n"

    header = f"new file mode 100644\nindex {'0' * 40}..{blob_id(data)}\n" if old is None else f"index {blob_id(old)}..{blob_id(data)} 100644\n"
    forward = hunk("literal", data) if delta is None else hunk("delta", delta)
    return f"diff --git a/{path} b/{path}\n{header}GIT binary patch\n{forward}{hunk('literal', old or b'')}"


def git_delta(source_size: int, result_size: int, commands: bytes) -> bytes:
    """A git delta: its two sizes (7 bits a byte, lowest first) and `commands` (0x80 alone: copy 64 KiB of the
    source from its start; 1-127: insert that many bytes that follow)."""

    def size(value: int) -> bytes:
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    return size(source_size) + size(result_size) + commands


# ledger-negative-rounding's `Money.rounded` (the function its problem statement names) calls the attack's `_note_use()`
# first: appended after an attack's library code by `with_code`.
ROUNDED_CALLS_IT = """
def _hooked():
    from .money import Money
    original = Money.rounded

    def rounded(self):
        _note_use()
        return original(self)

    Money.rounded = rounded


_hooked()
"""

UNITTEST_TEST_PATCH = """diff --git a/tests/test_unit.py b/tests/test_unit.py
new file mode 100644
--- /dev/null
+++ b/tests/test_unit.py
@@ -0,0 +1,12 @@
+import unittest
+from decimal import Decimal
+
+from ledger import Money
+
+
+class RoundingTests(unittest.TestCase):
+    def test_negative_half(self):
+        self.assertEqual(Money("-2.345").rounded(), Money("-2.35"))
+
+    def test_positive_half(self):
+        self.assertEqual(Money("2.345").rounded().amount, Decimal("2.35"))
"""


def ledger_as_unittest(task):
    """ledger-negative-rounding whose F2P test is a unittest.TestCase method run by pytest."""
    tests = task.tests.model_copy(
        update={
            "test_patch": UNITTEST_TEST_PATCH,
            "fail_to_pass": ["tests/test_unit.py::RoundingTests::test_negative_half"],
            "pass_to_pass": ["tests/test_unit.py::RoundingTests::test_positive_half", *task.tests.pass_to_pass[:5]],
        }
    )
    return task.model_copy(update={"tests": tests})


# ledger with a library test decorator and context manager its hidden tests use (red teams rt8a and rt9a, F1-F2, G3).
# A library helper the repository's own tests decorate tests with (as sklearn's `ignore_warnings`, matplotlib's
# `check_figures_equal`, Django's `override_settings`): library code, not a test file, not protected.
LEDGER_HELPERS = '''"""Helpers for code that uses ledger, and for ledger's own tests."""

import functools
import warnings


def quiet(func):
    """Run `func` with ledger's deprecation warnings silenced."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return func(*args, **kwargs)

    return wrapper
'''

LEDGER_BLOCKS = '''"""Blocks of code run with ledger's warnings handled."""

import contextlib
import warnings


@contextlib.contextmanager
def calm():
    """A block with ledger's deprecation warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield
'''

DECORATED_HIDDEN_TEST = """diff --git a/tests/test_quiet.py b/tests/test_quiet.py
new file mode 100644
--- /dev/null
+++ b/tests/test_quiet.py
@@ -0,0 +1,20 @@
+from decimal import Decimal
+
+from ledger import Money
+from ledger._blocks import calm
+from ledger._helpers import quiet
+
+
+@quiet
+def test_negative_half():
+    assert Money("-2.345").rounded() == Money("-2.35")
+
+
+@quiet
+def test_positive_half():
+    assert Money("2.345").rounded().amount == Decimal("2.35")
+
+
+def test_negative_half_calm():
+    with calm():
+        assert Money("-2.345").rounded() == Money("-2.35")
"""


def _ledger_with_helpers(task, where: Path) -> tuple[str, str]:
    """ledger with `ledger/_helpers.py` committed on top of the task's base commit: (repo path, new base commit)."""
    tree = where / "ledger-helpers"
    if not tree.exists():
        subprocess.run(["git", "clone", "-q", task.repo_location(), str(tree)], check=True)
        subprocess.run(["git", "-C", str(tree), "checkout", "-q", "-B", "helpers", task.base_commit], check=True)
        (tree / "ledger" / "_helpers.py").write_text(LEDGER_HELPERS)
        (tree / "ledger" / "_blocks.py").write_text(LEDGER_BLOCKS)
        subprocess.run(["git", "-C", str(tree), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(tree), "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-m", "helpers"], check=True)
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    return str(tree), head


def decorated_task(tasks, tmp_path_factory):
    task = next(task for task in tasks if task.id == "ledger-negative-rounding")
    repo, head = _ledger_with_helpers(task, tmp_path_factory.mktemp("rt8a"))
    tests = task.tests.model_copy(
        update={
            "test_patch": DECORATED_HIDDEN_TEST,
            "fail_to_pass": ["tests/test_quiet.py::test_negative_half", "tests/test_quiet.py::test_negative_half_calm"],
            "pass_to_pass": ["tests/test_quiet.py::test_positive_half", *task.tests.pass_to_pass[:5]],
        }
    )
    return task.model_copy(update={"repo": repo, "base_commit": head, "tests": tests, "gold_patch": ""})


# F1b: the same, the wrapper made by the standard library (`contextlib.ContextDecorator`), the swallow in the
# library's own context manager's `__exit__`.
CONTEXT_DECORATOR_HELPERS = '''"""Helpers for code that uses ledger, and for ledger's own tests."""

import contextlib
import warnings


class _Quiet(contextlib.ContextDecorator):
    """ledger's deprecation warnings silenced; a warning turned error by the filters is reported, not raised."""

    def __enter__(self):
        self._caught = warnings.catch_warnings()
        self._caught.__enter__()
        warnings.simplefilter("ignore", DeprecationWarning)
        return self

    def __exit__(self, kind, value, tb):
        self._caught.__exit__(kind, value, tb)
        if kind is not None and issubclass(kind, Exception):
            warnings.warn(str(value), RuntimeWarning)
            return True
        return False


def quiet(func):
    """Run `func` with ledger's deprecation warnings silenced."""
    return _Quiet()(func)
'''


def sample_control_then_attack(task, sample: str, library: str):
    """Red-team probes on a runner sample (tests/runner_samples.py): `library` appended to the sample's module, graded
    under `strict` on the native seal. Not armed, it must score 0 with the task's tests failing; armed (`_arm()`), it
    must not score 1 unflagged. Returns the armed run's report."""
    from swe_env.grading.grader import Grader

    from .runner_samples import SAMPLES

    def strict(patch):
        report = Grader(reward_policy="strict").grade(task, patch)
        assert report.status == "graded" and not report.infrastructure_failure, (report.status, report.error)
        assert report.seal == "native", report.log  # the attacks are on the native seal: a fallback would prove nothing
        return report

    files, source = SAMPLES[sample][0], SAMPLES[sample][1]
    control = strict(subprocess_diff(task, {source: files[source] + library}))
    assert control.reward == 0.0 and not control.resolved, control.test_results
    attack = strict(subprocess_diff(task, {source: files[source] + library + "_arm()\n"}))
    forged = attack.reward == 1.0 and attack.tampering == [] and attack.suspicious == []
    assert not forged, ("forged: reward 1 under strict, nothing flagged", attack.seal, attack.test_results)
    return attack
