"""Task specs: the pydantic models, loading and validating `task.yaml` files.

A task pins a repository at a commit, says how to build its environment, and carries
the hidden part (the test patch and the tests that decide success). Field docstrings
are the reference documentation of the task file format.

Why one module of this size: the task file's format is its pydantic models, whose field docstrings
are the reference documentation; one file keeps that reference in one place, with the loader that
applies it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from ..errors import did_you_mean

TASK_FILE = "task.yaml"
DEFAULT_TEST_COMMAND = "python -m pytest -rA -p no:cacheprovider"
DEFAULT_BASE_IMAGE = "debian:bookworm"
PYTHON_IMAGES = {"3.9": "debian:bullseye", "3.11": "debian:bookworm", "3.13": "debian:trixie"}
"""The Python versions we can provide, each from the Debian release whose `python3` it is.

These are the releases Debian's archive serves to debootstrap, so every one of them can be
bootstrapped offline when no registry answers."""

RunnerName = Literal["pytest", "django", "sympy", "harbor"]
"""The test runners the grader can read results from (`swe_env.grading.runners`)."""
DEFAULT_PROTECTED = (
    "**/conftest.py",
    "**/sitecustomize.py",
    "**/usercustomize.py",
    "**/pytest.ini",
    "**/.pytest.ini",
    "**/test_*.py",
    "**/*_test.py",
    "**/tests/**",
    # Code that loads without any import of the tests': package metadata (a `*.dist-info` on
    # sys.path registers pytest plugins through entry points), path hooks, shipped bytecode
    # (an unchecked-hash .pyc is run instead of its source).
    "**/*.dist-info/**",
    "**/*.egg-info/**",
    "**/*.egg-link",
    "**/*.pth",
    "**/__pycache__/**",
    "**/*.pyc",
    "**/*.pyo",
)
"""What the grader restores by default: pytest hooks, interpreter start-up hooks, pytest config, test files,
package metadata, path hooks and bytecode."""
DEFAULT_PROTECTED_CONFIG = ("**/pyproject.toml", "**/setup.cfg", "**/tox.ini")
"""Config files with a pytest section among other things: restored only when that section changed."""

_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class TaskSpecError(ValueError):
    """A task file is malformed; the message names the file, the task and the field."""


class _Strict(BaseModel):
    # Attribute docstrings become the fields' descriptions: the generated reference (`data/reference.py`) reads them.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Service(_Strict):
    """A process the tests need running beside them (a local HTTP server for suites that would call the internet)."""

    run: str
    """Shell command started in the background, as root, in every container of the task (the agent's and the
    grader's) before anything else runs there; its output goes to /run/swe-env-services.log."""
    ready: str | None = None
    """Shell command retried (every 0.2 s) until it exits 0: the service is up. None: do not wait."""
    ready_timeout: Annotated[float, Field(gt=0)] = 30.0
    """Seconds `ready` may take before the container counts as broken (an environment fault)."""


class Environment(_Strict):
    """How the container for a task is built (the `env` and `instance` image layers)."""

    image: str | None = None
    """A ready instance image (the repository at `workdir` at base_commit, its environment installed), e.g. SWE-bench's
    `swebench/sweb.eval.x86_64.<id>:latest`. Used as the task's image when the engine has it or can pull it
    (`images` mode `auto`, the default, or `published`); swe-env derives a thin layer from it (history after
    base_commit removed, the environment's activation baked in); otherwise the other fields build one."""
    activate: str | None = None
    """With `image`: the shell line that activates its environment (SWE-bench's images:
    `source /opt/miniconda3/bin/activate && conda activate testbed`, the default when the image has
    /opt/miniconda3/bin/activate). The variables it sets become the derived image's, so the agent's shell
    and the grader's commands run in that environment."""
    base_image: str | None = None
    """OS image to start from (default: the image for `python`, else debian:bookworm); bootstrapped offline with debootstrap when it is a Debian image that cannot be pulled."""
    python: str | None = None
    """Python version the task needs (`"3.9"`); picks the base image from `PYTHON_IMAGES`, the nearest version we have when none has it exactly (ties go to the older). Ignored when `base_image` is set."""
    pip_uploaded_prior_to: str | None = None
    """ISO date (`2024-10-15`): pip in the env layer considers only releases uploaded before it, so unpinned packages resolve as they did then."""
    apt_packages: list[str] = []
    """Debian packages installed in the env layer."""
    pip_packages: list[str] = []
    """Python packages installed into the env layer's virtualenv (/opt/swe-env/venv, first on PATH)."""
    requirements: list[str] = []
    """Requirement files of the repository (the first that exists at `requirements_commit`) whose entries the env layer installs with `pip_packages`."""
    requirements_commit: str | None = None
    """Commit the requirement files are read at (SWE-bench's environment_setup_commit); default: the task's base_commit."""
    install: list[str] = []
    """Shell commands run in the workdir after the repository is copied in (instance layer), e.g. `pip install -e .`."""
    env_setup: list[str] = []
    """Shell commands run as root in the env layer after its packages (shared by every instance that layer serves),
    e.g. a tool in a virtualenv of its own that the tests' packages must not see."""
    services: list[Service] = []
    """Processes started beside the tests in every container of the task (see `Service`)."""
    workdir: str = "/testbed"
    """Where the repository lives inside the container."""
    env: dict[str, str] = {}
    """Extra environment variables for the agent's shell and the test run."""
    user: str | None = None
    """Run the agent's tools as this user (created in the instance image, owning the workdir); None keeps root. The grader runs as root."""

    @field_validator("python")
    @classmethod
    def _valid_python(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"3\.\d{1,2}", value.strip()):
            raise ValueError("must be a Python 3 version such as '3.9'")
        return None if value is None else value.strip()

    @field_validator("pip_uploaded_prior_to")
    @classmethod
    def _valid_date(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}(T[\d:]+Z?)?", value.strip()):
            raise ValueError("must be an ISO date such as '2024-10-15'")
        return None if value is None else value.strip()

    @property
    def python_used(self) -> str | None:
        """The Python version the image will have when `python` picks it (None when `base_image` decides)."""
        if self.base_image is not None:
            return None
        return nearest_python(self.python or "3.11")

    @property
    def os_image(self) -> str:
        """The OS image this environment starts from."""
        if self.base_image is not None:
            return self.base_image
        return PYTHON_IMAGES[nearest_python(self.python)] if self.python else DEFAULT_BASE_IMAGE

    @field_validator("user")
    @classmethod
    def _valid_user(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z_][a-z0-9_-]{0,30}", value):
            raise ValueError("must be a lowercase user name such as 'agent'")
        if value == "root":
            return None
        return value

    @field_validator("workdir")
    @classmethod
    def _absolute_workdir(cls, value: str) -> str:
        if not value.startswith("/") or value.rstrip("/") == "":
            raise ValueError("must be an absolute path other than /")
        return value.rstrip("/")


def nearest_python(requested: str) -> str:
    """The version in `PYTHON_IMAGES` nearest to `requested` (by minor version; ties go to the older)."""
    minor = int(requested.split(".")[1])
    return min(PYTHON_IMAGES, key=lambda have: (abs(int(have.split(".")[1]) - minor), int(have.split(".")[1])))


class TestSpec(_Strict):
    """The hidden part of a task: never copied into the agent's container."""

    test_patch: str = ""
    """Unified diff (git format) adding or changing the tests that decide the task; applied only by the grader."""
    test_patch_file: str | None = None
    """A file holding `test_patch` instead (relative paths are relative to the task file); not both."""
    fail_to_pass: list[str]
    """Test ids (pytest node ids) that fail before the fix and must pass after it."""
    pass_to_pass: list[str] = []
    """Test ids that pass before the fix and must keep passing."""
    command: str = DEFAULT_TEST_COMMAND
    """Command the grader runs in the workdir, as written; the runner gets its results out of it."""
    runner: RunnerName = "pytest"
    """How results are read (`swe_env.grading.runners`): `pytest` asks for a JUnit XML report through PYTEST_ADDOPTS;
    `django` (its `tests/runtests.py`) and `sympy` (its `bin/test`) get a grader-owned recorder on PYTHONPATH;
    `harbor` (tasks from `swe-env tasks import-harbor`) reads the reward file Harbor's `/tests/test.sh` writes.
    The runner's own files (e.g. `tests/runtests.py`, `bin/test`) are restored to base_commit when changed."""
    protected: list[str] = list(DEFAULT_PROTECTED)
    """Globs (`*` stays within a folder, `**/` spans folders) of files the grader restores to base_commit, besides the files the test patch touches."""
    protected_config: list[str] = list(DEFAULT_PROTECTED_CONFIG)
    """Globs of shared config files restored to base_commit only when their pytest section changed (other edits to them are kept)."""
    protect_imports: bool = True
    """Remove new top-level modules named like pytest, its dependencies or a standard-library module: `python -m pytest` would import them first."""
    ask_runner: bool = True
    """Ask the installed runner, once per image, what it reads (`grading.runner_probe`): the config file names
    its pytest picks are protected too, and (with protect_imports) a new top-level module named like any module
    the interpreter imports from outside the repository, or that a clean run tried and failed to import, is removed."""
    log_fallback: bool = False
    """Read results from pytest's `-rA` summary when no JUnit report was written (for commands that ignore PYTEST_ADDOPTS; the output is agent-influenced)."""

    @field_validator("fail_to_pass")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one test id")
        return value


class Limits(_Strict):
    """Budgets and resource limits of one episode; every container runs with them."""

    max_steps: Annotated[int, Field(gt=0)] = 50
    """Steps before the episode is truncated."""
    command_timeout: Annotated[float, Field(gt=0)] = 60.0
    """Seconds one bash command may run before its processes are killed."""
    episode_timeout: Annotated[float, Field(gt=0)] = 1800.0
    """Wall-clock seconds from reset before the episode is truncated."""
    grading_timeout: Annotated[float, Field(gt=0)] = 600.0
    """Seconds the grader's test run may take: then it is stopped (from the host, through the engine, at the
    latest 15 s later) and graded as the model's failure (status `timeout`: the code under test hung)."""
    cpus: Annotated[float, Field(gt=0)] = 1.0
    """CPU cores the container may use."""
    memory: str = "2g"
    """Memory limit in Docker's notation (e.g. 512m, 2g); swap is not added on top."""
    pids: Annotated[int, Field(gt=16)] = 512
    """Maximum number of processes in the container (contains fork bombs)."""
    network: bool = False
    """Whether the agent's container has network access (off by default)."""
    disk: str = "4g"
    """Most the container may write: a hard size limit where the storage driver supports one, else checked after long commands and every few steps (the episode ends when exceeded)."""

    @field_validator("memory", "disk")
    @classmethod
    def _docker_size(cls, value: str) -> str:
        if not re.fullmatch(r"\d+(\.\d+)?[bkmgBKMG]?", value.strip()):
            raise ValueError("must be a size such as 512m or 2g")
        return value.strip().lower()


class Task(_Strict):
    """One task: a repository at a commit, a problem statement, and hidden tests."""

    id: str
    """Unique task id (letters, digits, `.`, `_`, `-`)."""
    repo: str
    """Git URL, local repository path, or git bundle path (relative paths are relative to the task file)."""
    base_commit: str
    """Full or abbreviated commit sha the agent starts from; nothing after it is visible in the container."""
    problem_statement: str
    """The issue text shown to the agent."""
    environment: Environment = Environment()
    """How the container is built."""
    tests: TestSpec
    """Hidden tests and the command that runs them."""
    gold_patch: str | None = None
    """Reference fix (unified diff); used by the oracle agent and by `swe-env validate`."""
    gold_patch_file: str | None = None
    """A file holding `gold_patch` instead (relative paths are relative to the task file); not both."""
    limits: Limits = Limits()
    """Budgets and resource limits."""
    meta: dict[str, str] = {}
    """Provenance that grading ignores (e.g. SWE-bench's version and environment_setup_commit)."""

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _TASK_ID.match(value):
            raise ValueError("must contain only letters, digits, '.', '_' and '-'")
        return value

    @field_validator("base_commit")
    @classmethod
    def _valid_sha(cls, value: str) -> str:
        value = value.strip().lower()
        if not _SHA.match(value):
            raise ValueError("must be a hexadecimal commit sha (7 to 40 characters)")
        return value

    @field_validator("problem_statement")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @property
    def source(self) -> Path | None:
        """The task file this task was loaded from, if any."""
        return self._source

    def check_repo(self) -> None:
        """TaskSpecError naming the file, the task and the field when `repo` is a local path that does not
        exist (an author's mistake, found without git; URLs are checked when they are cloned)."""
        location = self.repo_location()
        if "://" in location or location.startswith("git@") or Path(location).exists():
            return
        where = f"{self._source}: " if self._source is not None else ""
        relative = f" (relative to {self._source.parent})" if self._source is not None and not Path(self.repo).is_absolute() else ""
        raise TaskSpecError(f"{where}task '{self.id}': field 'repo': no such file or directory: {self.repo}{relative}")

    def repo_location(self) -> str:
        """The repo as git understands it: URLs unchanged, paths resolved against the task file."""
        if "://" in self.repo or self.repo.startswith("git@"):
            return self.repo
        path = Path(self.repo).expanduser()
        if not path.is_absolute() and self._source is not None:
            path = self._source.parent / path
        return str(path.resolve())


def _read_yaml(path: Path):
    """A YAML file's data; TaskSpecError naming the file (and the line) when it cannot be read or parsed."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TaskSpecError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise TaskSpecError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None


def load_task_file(path: str | Path) -> Task:
    """Load one task file; a malformed file raises TaskSpecError naming file, task and field."""
    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise TaskSpecError(f"{path}: expected a mapping of task fields, got {type(data).__name__}")
    data = _read_patch_files(path, data)
    try:
        task = Task.model_validate(data)
    except ValidationError as exc:
        raise TaskSpecError(_describe(path, data, exc)) from None
    task._source = path.resolve()
    return task


def load_environment(path: str | Path) -> Environment:
    """An environment file (YAML: the fields of `Environment`, or a task file's `environment:` mapping);
    a malformed one raises TaskSpecError naming the file and the field."""
    path = Path(path)
    data = _read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("environment"), dict):
        data = data["environment"]
    if not isinstance(data, dict):
        raise TaskSpecError(f"{path}: expected a mapping of environment fields")
    try:
        return Environment.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(root)"
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise TaskSpecError(f"{path}: field '{field}': {message}") from None


def load_tasks(path: str | Path) -> list[Task]:
    """Load tasks from a task file, a task folder (`<dir>/task.yaml`) or a folder of task folders.

    Tasks come back sorted by id; duplicate ids are an error naming both files.
    """
    path = Path(path)
    if path.is_file():
        files = [path]
    elif (path / TASK_FILE).is_file():
        files = [path / TASK_FILE]
    elif path.is_dir():
        files = sorted(path.glob(f"*/{TASK_FILE}"))
        if not files:
            raise TaskSpecError(f"{path}: no task files found (expected {path}/<task-id>/{TASK_FILE})")
    else:
        raise TaskSpecError(f"{path}: no such file or directory")
    tasks: dict[str, Task] = {}
    for file in files:
        task = load_task_file(file)
        if task.id in tasks:
            raise TaskSpecError(f"{file}: task '{task.id}': duplicate id (also in {tasks[task.id].source})")
        tasks[task.id] = task
    return [tasks[key] for key in sorted(tasks)]


def _read_patch_files(path: Path, data: dict) -> dict:
    """`gold_patch_file` and `tests.test_patch_file` read into `gold_patch` and `tests.test_patch` (the file
    names stay, so the task is written back the same way); a missing file, or both forms given, names the field."""
    task_id = data.get("id") if isinstance(data.get("id"), str) else "?"
    data = dict(data)
    tests = data.get("tests")
    places = [(data, "gold_patch", "gold_patch_file", "gold_patch_file")]
    if isinstance(tests, dict):
        data["tests"] = tests = dict(tests)
        places.append((tests, "test_patch", "test_patch_file", "tests.test_patch_file"))
    for holder, field, file_field, where in places:
        name = holder.get(file_field)
        if name is None:
            continue
        if not isinstance(name, str) or not name.strip():
            raise TaskSpecError(f"{path}: task '{task_id}': field '{where}': must be a file name")
        if holder.get(field):
            raise TaskSpecError(f"{path}: task '{task_id}': field '{where}': give {field} or {file_field}, not both")
        target = Path(name).expanduser()
        target = target if target.is_absolute() else path.parent / target
        try:
            holder[field] = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            cause = getattr(exc, "strerror", None) or str(exc)
            raise TaskSpecError(f"{path}: task '{task_id}': field '{where}': cannot read {target}: {cause}") from None
    return data


def _describe(path: Path, data: dict, exc: ValidationError) -> str:
    """Every problem of the file on one line: unknown fields first (a misspelt name explains the "missing"
    field that follows it), each with the nearest known field name."""
    task_id = data.get("id") if isinstance(data.get("id"), str) else "?"
    errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
    problems = []
    for error in errors:
        loc = tuple(error["loc"])
        field = ".".join(str(part) for part in loc) or "(root)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] == "extra_forbidden":
            message = "unknown field" + did_you_mean(str(loc[-1]), _fields_at(loc[:-1]))
        problems.append(f"field '{field}': {message}")
    return f"{path}: task '{task_id}': " + "; ".join(problems)


def _fields_at(loc: tuple) -> list[str]:
    """The field names a mapping at `loc` (a path of field names) may have."""
    model: type[BaseModel] = Task
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


_WRITTEN_FIELDS = ("id", "repo", "base_commit", "problem_statement", "environment", "tests", "gold_patch", "gold_patch_file", "limits", "meta")


def write_task_file(task: Task, folder: str | Path) -> Path:
    """Write `task` to `<folder>/task.yaml` (fields left at their defaults are left out); returns the file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = task.model_dump(mode="json", exclude_defaults=True)
    # A patch kept in a file is written as the file's name only (the caller writes the file).
    if task.gold_patch_file:
        data.pop("gold_patch", None)
    if task.tests.test_patch_file:
        data.get("tests", {}).pop("test_patch", None)
    data = {key: data[key] for key in _WRITTEN_FIELDS if key in data}
    target = folder / TASK_FILE
    target.write_text(yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=1000))
    return target


def check_round_trip(target: Path, task: Task) -> None:
    """The patches in a written task file must read back byte for byte, whatever YAML chose for them."""
    again = load_task_file(target)
    if again.gold_patch != task.gold_patch or again.tests.test_patch != task.tests.test_patch:
        raise TaskSpecError(f"{target}: task '{task.id}': patches do not round-trip through YAML")


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (patches, problem statements) as `|` blocks where YAML allows it."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)
