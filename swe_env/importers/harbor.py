"""Harbor tasks → our task spec (`swe-env tasks import-harbor`).

Harbor (the successor of terminal-bench) lays a task out as a folder:

    task.toml             config: [task] name, [verifier]/[agent] timeouts, [environment] resources ...
    instruction.md        what the agent is told
    environment/          the build context; its Dockerfile (or [environment].docker_image) is the container
    tests/test.sh         the verifier: copied to /tests after the agent ran, it writes /logs/verifier/reward.txt
                          (one number) or reward.json (an object; `reward` is the conventional key)
    solution/solve.sh     the reference solution (Harbor's oracle copies solution/ to /solution and runs it)

Importing one (a task folder, or a folder of them) writes `<out>/<id>/task.yaml` and
`<out>/<id>/<id>.bundle`:

1. The environment image is built from `environment/` (every `FROM` / `COPY --from` image must
   be on the engine, pullable, or a Debian image we bootstrap offline; else a one-line error
   naming the Dockerfile, the field and the cause), tagged `swe-env/harbor:<id>-<hash of the
   context>`. It becomes the task's `environment.base_image`, so our base, env and instance
   layers go on top of it as on any OS image; the task's PATH is the Harbor image's (our env
   layer's venv would otherwise shadow the image's own Python).
2. The working folder (`[environment].workdir`, else the image's WORKDIR) is copied out of the
   image and committed, with a fixed author and date, as one commit on `main` of a git bundle:
   the task's `repo` and `base_commit`, so the agent's diff, the grader's patch and restore
   steps work as for every task. The same context gives the same commit.
3. `tests/` becomes the test patch, under `runners.HARBOR_TESTS_IN_PATCH` (hidden: it exists
   only in grader containers); `tests.runner: harbor` moves it to `/tests`, makes
   `/logs/verifier` anew after the patch is applied, runs `/tests/test.sh` and reads the reward
   file: the one listed test, `reward`, passes when the reward is 1.
4. `solution/solve.sh` runs as root in a container from the task's image (no network, the
   `[solution].env`, the agent's timeout); the diff of the working folder it leaves is the
   gold patch. When it fails, or changes nothing in the working folder, the task has no gold
   patch and `meta.harbor_gold` says why.

Not supported (each a one-line error): Windows tasks, multi-step tasks (`[[steps]]`), GPUs and
TPUs, a separate verifier environment, docker-compose environments, `${VAR}` values resolved
from the host, non-root users, a working folder that is already a git repository.

Why one module of this size: one import path: task.toml's checks, the environment image and
the bundle are its steps, and each refusal message names the field it checks.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..build import images
from ..build.images import ImageBuildError
from ..data.task import Environment, Limits, Task, TaskSpecError, TestSpec, check_round_trip, load_task_file, write_task_file
from ..grading import runners
from ..runtime import engine
from ..runtime.sandbox import Sandbox, SandboxError

CONFIG_FILE = "task.toml"
INSTRUCTION_FILE = "instruction.md"
SNAPSHOT_LIMIT = 512 * 1024 * 1024
"""Bytes of the working folder copied out of the image; a larger one is refused."""
TESTS_LIMIT = 16 * 1024 * 1024
"""Bytes of the tests folder (it travels in task.yaml as the test patch)."""
COMMIT_DATE = "2000-01-01T00:00:00+00:00"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "swe-env",
    "GIT_AUTHOR_EMAIL": "swe-env@localhost",
    "GIT_AUTHOR_DATE": COMMIT_DATE,
    "GIT_COMMITTER_NAME": "swe-env",
    "GIT_COMMITTER_EMAIL": "swe-env@localhost",
    "GIT_COMMITTER_DATE": COMMIT_DATE,
}

Progress = Callable[[str], None]


class HarborTaskError(TaskSpecError):
    """A Harbor task we cannot read or do not support; the message names the file, the field and the cause."""


# ---------------------------------------------------------------- task.toml (the fields we read)


class _Section(BaseModel):
    # Unknown keys are ignored, as Harbor's own models (pydantic's default) ignore them.
    model_config = ConfigDict(extra="ignore")


class HarborPackage(_Section):
    """`[task]`: the package's identity in Harbor's registry."""

    name: str
    """`org/name`; our task id is `org__name`."""
    description: str = ""


class HarborVerifier(_Section):
    """`[verifier]`: how the tests run."""

    timeout_sec: float = 600.0
    """Seconds `/tests/test.sh` may take: our `limits.grading_timeout`."""
    env: dict[str, str] = {}
    """Variables for the verifier alone: exported before `/tests/test.sh` in the test command."""
    user: str | int | None = None
    """Harbor runs the verifier as this user; only root (or none) is supported: the grader runs as root."""
    environment_mode: str | None = None
    """`shared` (the agent's environment; ours: a fresh container from the same image) is supported, `separate` is not."""
    environment: dict[str, Any] | None = None
    """A separate verifier environment: not supported."""


class HarborAgent(_Section):
    """`[agent]`: the agent's budget."""

    timeout_sec: float | None = None
    """Seconds the agent may take: our `limits.episode_timeout` (and solve.sh's timeout at import)."""
    user: str | int | None = None
    """Only root (or none) is supported."""


class HarborEnvironment(_Section):
    """`[environment]`: the container."""

    build_timeout_sec: float = 600.0
    """Read, not enforced: the build runs as long as it takes."""
    docker_image: str | None = None
    """A ready image used instead of `environment/Dockerfile`."""
    os: str = "linux"
    """Only `linux`."""
    cpus: float | None = None
    """Our `limits.cpus`."""
    memory_mb: int | None = Field(default=None, gt=0)
    """Our `limits.memory`."""
    storage_mb: int | None = Field(default=None, gt=0)
    """Our `limits.disk`."""
    memory: str | None = None
    """Deprecated (`"2G"`), read as `memory_mb`."""
    storage: str | None = None
    """Deprecated, read as `storage_mb`."""
    gpus: int | None = None
    tpu: dict[str, Any] | None = None
    env: dict[str, str] = {}
    """Variables for the agent and the verifier: our `environment.env`."""
    workdir: str | None = None
    """The working folder (default: the image's WORKDIR): our `environment.workdir` and the repository."""
    network_mode: str | None = None
    """Recorded in `meta.harbor_network_mode`; our containers have no network either way."""
    allow_internet: bool | None = None
    """Deprecated form of `network_mode`."""

    @field_validator("os", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class HarborSolution(_Section):
    """`[solution]`."""

    env: dict[str, str] = {}
    """Variables for solve.sh."""


class HarborConfig(_Section):
    """What we read of Harbor's `task.toml` (its `TaskConfig`); the other keys are ignored."""

    schema_version: str = "1.4"
    """Harbor's format version (`version` in older files; Harbor 0.26's default when absent)."""
    task: HarborPackage | None = None
    metadata: dict[str, Any] = {}
    verifier: HarborVerifier = HarborVerifier()
    agent: HarborAgent = HarborAgent()
    environment: HarborEnvironment = HarborEnvironment()
    solution: HarborSolution = HarborSolution()
    steps: list[dict[str, Any]] | None = None
    """Multi-step tasks: not supported."""
    source: str | None = None


# ---------------------------------------------------------------- reading a task folder


@dataclass
class HarborTask:
    """One Harbor task folder, read and checked (nothing built yet)."""

    folder: Path
    config: HarborConfig
    id: str
    instruction: str
    tests: Path
    solution: Path | None
    dockerfile: Path | None


def find_tasks(path: str | Path) -> list[Path]:
    """The Harbor task folders at `path`: itself when it holds task.toml, else its sub-folders that do."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return [path]
    if not path.is_dir():
        raise HarborTaskError(f"{path}: no such folder")
    found = sorted(child for child in path.iterdir() if (child / CONFIG_FILE).is_file())
    if not found:
        raise HarborTaskError(f"{path}: no Harbor task found (expected {path}/{CONFIG_FILE} or {path}/<task>/{CONFIG_FILE})")
    return found


def read_config(path: Path) -> HarborConfig:
    """Parse and check a task.toml; a problem is one line naming the file, the field and the cause."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HarborTaskError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HarborTaskError(f"{path}: not valid TOML: {exc}") from None
    if "version" in data and "schema_version" not in data:
        data["schema_version"] = data.pop("version")
    try:
        config = HarborConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(root)"
        message = "required field is missing" if first["type"] == "missing" else first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise HarborTaskError(f"{path}: field '{where}': {message}{more}") from None
    _check_supported(path, config)
    return config


def _check_supported(path: Path, config: HarborConfig) -> None:
    environment, verifier = config.environment, config.verifier

    def refuse(where: str, why: str) -> None:
        raise HarborTaskError(f"{path}: field '{where}': {why}")

    if environment.os != "linux":
        refuse("environment.os", f"{environment.os!r} tasks are not supported (Linux containers only)")
    if config.steps:
        refuse("steps", "multi-step tasks are not supported")
    if environment.gpus:
        refuse("environment.gpus", "GPUs are not supported")
    if environment.tpu:
        refuse("environment.tpu", "TPUs are not supported")
    if verifier.environment is not None or verifier.environment_mode not in (None, "shared"):
        refuse(
            "verifier.environment_mode", "a separate verifier environment is not supported (the tests run in a fresh container from the task's image)"
        )
    for where, user in (("verifier.user", verifier.user), ("agent.user", config.agent.user)):
        if user not in (None, "root", 0):
            refuse(where, f"running as {user!r} is not supported (the agent's tools and the grader run as root)")
    for section, values in (("environment.env", environment.env), ("verifier.env", verifier.env), ("solution.env", config.solution.env)):
        for name, value in values.items():
            if "${" in value:
                refuse(f"{section}.{name}", "values resolved from the host (${VAR}) are not supported; write the value")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                refuse(f"{section}.{name}", "not a variable name")
    for where, number in (
        ("verifier.timeout_sec", verifier.timeout_sec),
        ("agent.timeout_sec", config.agent.timeout_sec),
        ("environment.cpus", environment.cpus),
    ):
        if number is not None and (not math.isfinite(number) or number <= 0):
            refuse(where, "must be a positive number")
    for where, size in (("environment.memory", environment.memory), ("environment.storage", environment.storage)):
        if size is not None and not re.fullmatch(r"\s*\d+(\.\d+)?\s*[GgMmKk]\s*", size):
            refuse(where, "must be a size such as '2G' or '512M'")
    if environment.workdir is not None and (not environment.workdir.startswith("/") or environment.workdir.rstrip("/") == ""):
        refuse("environment.workdir", "must be an absolute path other than /")


def read_task(folder: str | Path) -> HarborTask:
    """Read one Harbor task folder: its config, instruction, tests, solution and environment."""
    folder = Path(folder)
    config = read_config(folder / CONFIG_FILE)
    instruction_path = folder / INSTRUCTION_FILE
    try:
        instruction = instruction_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarborTaskError(f"{instruction_path}: cannot read: {exc.strerror or exc}") from None
    if not instruction.strip():
        raise HarborTaskError(f"{instruction_path}: the instruction is empty")
    tests = folder / "tests"
    if not (tests / "test.sh").is_file():
        found = "only test.bat (Windows)" if (tests / "test.bat").is_file() else "no such file"
        raise HarborTaskError(f"{tests / 'test.sh'}: the verifier script is missing ({found})")
    environment = folder / "environment"
    dockerfile = environment / "Dockerfile"
    for compose in ("docker-compose.yaml", "docker-compose.yml", "compose.yaml", "compose.yml"):
        if (environment / compose).is_file():
            raise HarborTaskError(f"{environment / compose}: multi-container (compose) environments are not supported")
    if config.environment.docker_image is None and not dockerfile.is_file():
        raise HarborTaskError(f"{dockerfile}: no such file, and task.toml sets no 'environment.docker_image'")
    solution = folder / "solution"
    return HarborTask(
        folder=folder,
        config=config,
        id=task_id(folder, config),
        instruction=instruction,
        tests=tests,
        solution=solution if (solution / "solve.sh").is_file() else None,
        dockerfile=dockerfile if config.environment.docker_image is None else None,
    )


def task_id(folder: Path, config: HarborConfig) -> str:
    """`org__name` from `[task].name`, else the folder's name; characters our ids do not allow become `-`."""
    raw = config.task.name.replace("/", "__") if config.task else folder.resolve().name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", raw).lstrip("._-")
    return cleaned or "harbor-task"


# ---------------------------------------------------------------- the environment image


def referenced_images(text: str) -> list[tuple[str, str]]:
    """(field, image) for every image a Dockerfile builds on: `FROM` lines and `COPY --from=<image>`.

    Stage names, `scratch` and stage numbers are not images; `$ARG` / `${ARG}` are replaced by
    the defaults of `ARG`s declared before the first FROM. ValueError for an argument with no default.
    """
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current.strip():
        lines.append(current)
    arguments: dict[str, str] = {}
    stages: set[str] = set()
    found: list[tuple[str, str]] = []
    seen_from = False

    def substitute(value: str, where: str) -> str:
        def replace(match: re.Match) -> str:
            name = match.group(1) or match.group(2)
            if name not in arguments:
                raise ValueError(f"{where}: {value}: build argument '{name}' has no default")
            return arguments[name]

        return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|\$([A-Za-z_][A-Za-z0-9_]*)", replace, value)

    for line in lines:
        words = line.split()
        instruction = words[0].upper()
        if instruction == "ARG" and not seen_from and len(words) > 1:
            name, _, default = words[1].partition("=")
            if default:
                arguments[name] = default.strip("\"'")
        elif instruction == "FROM":
            seen_from = True
            rest = [word for word in words[1:] if not word.startswith("--")]
            if not rest:
                raise ValueError(f"FROM: {line}: names no image")
            image = substitute(rest[0], "FROM")
            if len(rest) >= 3 and rest[1].lower() == "as":
                stages.add(rest[2].lower())
            if image.lower() not in stages and image != "scratch":
                found.append(("FROM", image))
        elif instruction in ("COPY", "ADD"):
            for word in words[1:]:
                if word.startswith("--from="):
                    source = substitute(word.removeprefix("--from="), f"{instruction} --from")
                    if source.lower() not in stages and not source.isdigit():
                        found.append((f"{instruction} --from", source))
    return found


def _context_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink():
            digest.update(f"L {relative} {os.readlink(path)}\0".encode())
        elif path.is_file():
            digest.update(f"F {relative} {os.access(path, os.X_OK)}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def environment_image(harbor: HarborTask, progress: Progress | None = None) -> str:
    """The task's environment image: `[environment].docker_image`, or built from `environment/`."""
    say = progress or (lambda _message: None)
    docker_image = harbor.config.environment.docker_image
    if docker_image is not None:
        _ensure_image(harbor.folder / CONFIG_FILE, "environment.docker_image", docker_image, progress)
        return docker_image
    assert harbor.dockerfile is not None
    dockerfile = harbor.dockerfile
    text = dockerfile.read_text(encoding="utf-8", errors="replace")
    try:
        needed = referenced_images(text)
    except ValueError as exc:
        raise HarborTaskError(f"{dockerfile}: {exc}") from None
    if not needed:
        raise HarborTaskError(f"{dockerfile}: field 'FROM': the Dockerfile names no base image")
    for where, image in needed:
        _ensure_image(dockerfile, where, image, progress)
    context = dockerfile.parent
    tag = f"swe-env/harbor:{harbor.id.lower()}-{_context_digest(context)}"
    if images.image_exists(tag):
        return tag
    say(f"{harbor.id}: building the environment {tag}")
    error, log_path = images.build_image(
        tag, {engine.MANAGED_LABEL: "1", "swe_env.kind": "image-harbor", "swe_env.task": harbor.id}, path=str(context), dockerfile="Dockerfile"
    )
    if error is not None:
        raise ImageBuildError(f"{dockerfile}: building the environment failed: {error}; log: {log_path}")
    return tag


def _ensure_image(source: Path, where: str, image: str, progress: Progress | None) -> None:
    try:
        images.ensure_os_image(image, progress)
    except ImageBuildError as exc:
        raise HarborTaskError(f"{source}: field '{where}': {image}: {exc}") from None


# ---------------------------------------------------------------- the working folder as a repository


def image_settings(image: str) -> tuple[str, str, str]:
    """(WORKDIR, USER, PATH) of an image's config ("" when unset)."""
    config = engine.client().images.get(image).attrs.get("Config") or {}
    variables = dict(entry.split("=", 1) for entry in config.get("Env") or [] if "=" in entry)
    return (config.get("WorkingDir") or "").rstrip("/"), config.get("User") or "", variables.get("PATH", "")


def snapshot_workdir(image: str, workdir: str, bundle: Path, source: str) -> str:
    """Copy `workdir` out of `image`, commit it (fixed author and date) on `main` of a new git bundle; the sha.

    `source` names what is being imported, for errors. A working folder that already holds a
    `.git`, or one over SNAPSHOT_LIMIT bytes, is refused.
    """
    container = engine.create_container(image, ["true"], "harbor-snapshot", network_disabled=True)
    with tempfile.TemporaryDirectory(prefix="swe-env-harbor-") as tmp:
        archive = Path(tmp) / "workdir.tar"
        try:
            try:
                stream, _stat = container.get_archive(workdir)
            except docker.errors.NotFound:
                raise HarborTaskError(f"{source}: field 'WORKDIR': {workdir} does not exist in the image") from None
            size = 0
            with open(archive, "wb") as out:
                for chunk in stream:
                    size += len(chunk)
                    if size > SNAPSHOT_LIMIT:
                        raise HarborTaskError(
                            f"{source}: field 'WORKDIR': {workdir} holds more than {SNAPSHOT_LIMIT >> 20} MB; the working folder becomes a repository"
                        )
                    out.write(chunk)
        finally:
            engine.remove_quietly(container.id)
        tree = Path(tmp) / "tree"
        tree.mkdir()
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="tar")
        roots = list(tree.iterdir())
        root = roots[0] if len(roots) == 1 and roots[0].is_dir() else tree
        if (root / ".git").exists():
            raise HarborTaskError(
                f"{source}: field 'WORKDIR': {workdir} is already a git repository, which is not supported (its history would reach the agent)"
            )
        if (root / runners.HARBOR_TESTS_IN_PATCH.split("/")[0]).exists():
            raise HarborTaskError(
                f"{source}: field 'WORKDIR': {workdir} holds {runners.HARBOR_TESTS_IN_PATCH.split('/')[0]}, where the grader lays the tests"
            )
        _git(root, "init", "-q", "-b", "main")
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "--allow-empty", "--no-verify", "-m", f"{workdir} of the Harbor environment")
        sha = _git(root, "rev-parse", "HEAD").strip()
        bundle.parent.mkdir(parents=True, exist_ok=True)
        staged = bundle.with_name(bundle.name + ".tmp")
        _git(root, "bundle", "create", "-q", str(staged.resolve()), "main")
        staged.replace(bundle)
        return sha


def tests_patch(tests: Path) -> str:
    """The tests folder as a git patch adding it under `runners.HARBOR_TESTS_IN_PATCH` (binary-safe, modes kept)."""
    with tempfile.TemporaryDirectory(prefix="swe-env-harbor-tests-") as tmp:
        root = Path(tmp)
        _git(root, "init", "-q")
        shutil.copytree(tests, root / runners.HARBOR_TESTS_IN_PATCH, symlinks=True)
        _git(root, "add", "-A", "-f")
        patch = _git(root, "diff", "--cached", "--binary", "--full-index", "--no-renames")
    if len(patch.encode()) > TESTS_LIMIT:
        raise HarborTaskError(f"{tests}: the tests folder is larger than {TESTS_LIMIT >> 20} MB")
    return patch


def _git(cwd: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LANG": "C.UTF-8",
        **_IDENTITY,
    }
    result = subprocess.run(
        ["git", "-c", "core.autocrlf=false", "-c", "core.fileMode=true", "-c", "core.symlinks=true", "-c", "commit.gpgSign=false", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
    )
    if result.returncode != 0:
        raise HarborTaskError(f"git {args[0]} failed in {cwd}: {result.stderr.decode(errors='replace').strip()[-300:]}")
    return result.stdout.decode("utf-8", errors="surrogateescape")


# ---------------------------------------------------------------- the task spec


def _size_mb(text: str) -> int:
    text = text.strip().upper()
    scale = {"G": 1024, "M": 1, "K": 1 / 1024}[text[-1]]
    return int(float(text[:-1]) * scale)


def to_task(harbor: HarborTask, image: str, workdir: str, path: str, base_commit: str, test_patch: str) -> Task:
    """Our task spec for a Harbor task whose environment image, working folder and repository are known."""
    config = harbor.config
    environment, verifier = config.environment, config.verifier
    memory = environment.memory_mb or (_size_mb(environment.memory) if environment.memory else None)
    storage = environment.storage_mb or (_size_mb(environment.storage) if environment.storage else None)
    limits: dict[str, object] = {"grading_timeout": verifier.timeout_sec}  # Limits' fields, validated by it
    if config.agent.timeout_sec:
        limits["episode_timeout"] = config.agent.timeout_sec
    if environment.cpus:
        limits["cpus"] = environment.cpus
    if memory:
        limits["memory"] = f"{memory}m"
    if storage:
        limits["disk"] = f"{storage}m"
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in verifier.env.items())
    network = environment.network_mode or (None if environment.allow_internet is None else "public" if environment.allow_internet else "no-network")
    meta = {
        "source": "harbor",
        "harbor_task": str(harbor.folder.resolve()),
        "harbor_schema_version": config.schema_version,
        "harbor_image": image,
        "harbor_network_mode": network or "public (Harbor's default; no network here)",
        **({"harbor_name": config.task.name} if config.task else {}),
    }
    return Task(
        id=harbor.id,
        repo=f"{harbor.id}.bundle",
        base_commit=base_commit,
        problem_statement=harbor.instruction,
        environment=Environment(base_image=image, workdir=workdir, env={**({"PATH": path} if path else {}), **environment.env}),
        tests=TestSpec(
            test_patch=test_patch, fail_to_pass=[runners.HARBOR_REWARD_ID], command=f"{exports}{runners.HARBOR_TESTS_DIR}/test.sh", runner="harbor"
        ),
        limits=Limits.model_validate(limits),
        meta=meta,
    )


def gold_from_solution(task: Task, harbor: HarborTask, builder: images.ImageBuilder | None = None) -> tuple[str | None, str]:
    """Run solve.sh in a container from the task's image; (the diff it leaves in the working folder, or None; why)."""
    if harbor.solution is None:
        return None, "no solution/solve.sh"
    builder = builder or images.ImageBuilder()
    image = builder.ensure(task)
    timeout = harbor.config.agent.timeout_sec or 600.0
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in harbor.config.solution.env.items())
    with Sandbox.for_task(task, image, "harbor-solve", user=None) as box:
        for path in sorted(harbor.solution.rglob("*")):
            if path.is_file() and not path.is_symlink():
                relative = path.relative_to(harbor.solution).as_posix()
                box.write_file(f"/solution/{relative}", path.read_bytes(), mode=path.stat().st_mode & 0o777)
        run = box.exec(["bash", "-c", f"{exports}chmod +x /solution/solve.sh && exec /solution/solve.sh </dev/null"], timeout=timeout, user="root")
        if run.exit_code != 0:
            tail = " ".join(run.output.strip().splitlines()[-3:])[-300:]
            return None, f"solution/solve.sh exited {run.exit_code}: {tail}"
        patch = box.diff(task.base_commit)
    if not patch.strip():
        return None, f"solution/solve.sh changed nothing in {task.environment.workdir}"
    return patch, "the diff solution/solve.sh leaves in the working folder"


def import_task(folder: str | Path, out: str | Path, progress: Progress | None = None, builder: images.ImageBuilder | None = None) -> Path:
    """Import one Harbor task folder into `<out>/<id>/` (task.yaml and `<id>.bundle`); returns the task file."""
    harbor = read_task(folder)
    config_path = harbor.folder / CONFIG_FILE
    image = environment_image(harbor, progress)
    image_workdir, user, path = image_settings(image)
    where = harbor.dockerfile or config_path
    if user not in ("", "root", "0", "0:0"):
        raise HarborTaskError(f"{where}: field 'USER': the image runs as {user!r}; only root images are supported")
    workdir = (harbor.config.environment.workdir or image_workdir).rstrip("/")
    if not workdir:
        raise HarborTaskError(
            f"{where}: field 'WORKDIR': not set; set WORKDIR in the Dockerfile or 'environment.workdir' in task.toml (the agent's working folder)"
        )
    folder_out = Path(out) / harbor.id
    base_commit = snapshot_workdir(image, workdir, folder_out / f"{harbor.id}.bundle", str(where))
    task = to_task(harbor, image, workdir, path, base_commit, tests_patch(harbor.tests))
    target = write_task_file(task, folder_out)
    (progress or (lambda _m: None))(f"{harbor.id}: running solution/solve.sh for the gold patch")
    try:
        gold, why = gold_from_solution(load_task_file(target), harbor, builder)
    except SandboxError as exc:
        gold, why = None, f"solution/solve.sh could not run: {exc}"
    task = task.model_copy(update={"gold_patch": gold, "meta": {**task.meta, "harbor_gold": why}})
    target = write_task_file(task, folder_out)
    check_round_trip(target, task)
    return target


def check_tasks(path: str | Path) -> list[Path]:
    """The Harbor task folders at `path`, each read and checked, ids unique (nothing built); HarborTaskError otherwise."""
    folders = find_tasks(path)
    ids: dict[str, Path] = {}
    for folder in folders:
        harbor = read_task(folder)
        if harbor.id in ids:
            raise HarborTaskError(f"{folder / CONFIG_FILE}: task id '{harbor.id}' also comes from {ids[harbor.id]}")
        ids[harbor.id] = folder / CONFIG_FILE
    return folders


def import_tasks(path: str | Path, out: str | Path, progress: Progress | None = None) -> list[Path]:
    """Import a Harbor task folder, or every one in a folder of them; returns the task files written."""
    folders = check_tasks(path)  # every task is read before anything is built
    builder = images.ImageBuilder(progress=progress)
    return [import_task(folder, out, progress, builder) for folder in folders]
