"""SWE-bench instances and predictions: reading them, and turning instances into task specs.

An instance (`instance_id, repo, base_commit, patch, test_patch, problem_statement,
FAIL_TO_PASS, PASS_TO_PASS, version, environment_setup_commit`) becomes a `Task` whose
environment comes from a recipe chosen by repository and version (the built-in table
`recipes/swebench.yaml`, with a user's YAML/JSON file laid over it). `owner/name` repositories
are cloned from GitHub, or taken from a local mirror folder holding `owner__name` clones or
bundles. Newer dataset files also carry `eval_script` (whose test command, between SWE-bench's
output markers, becomes the task's), `log_parser`, `eval_type` and `image`; they are read
when present and recorded in the task's `meta`.

Files may be JSON (a list of objects), JSONL, or parquet (needs pyarrow: `pip install
'swe-env[datasets]'`). List fields may be JSON strings, as on the Hugging Face hub.

Why one module of this size (just over 400 lines): reading SWE-bench's files, its recipes and its
predictions are one format's import; split, each part would carry the id and field rules of the others.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ..data.task import RunnerName, Service, Task, check_round_trip, load_tasks, nearest_python, write_task_file
from ..grading import diffs

REQUIRED_FIELDS = ("instance_id", "repo", "base_commit", "patch", "test_patch", "FAIL_TO_PASS", "PASS_TO_PASS")
OPTIONAL_FIELDS = (
    "problem_statement",
    "version",
    "environment_setup_commit",
    "hints_text",
    "created_at",
    "eval_script",
    "log_parser",
    "eval_type",
    "image",
)
START_TEST_OUTPUT = ">>>>> Start Test Output"
END_TEST_OUTPUT = ">>>>> End Test Output"
"""SWE-bench's markers around the test command's output (in its eval scripts and logs)."""
VERSION = "{version}"
"""Placeholder in a recipe's install commands: the instance's version."""
TEST_FILES = "{test_files}"
"""Placeholder in a recipe's test command: the Python files the instance's test patch touches."""
RUNNER_OF_LOG_PARSER: dict[str, RunnerName] = {"parse_log_django": "django", "parse_log_sympy": "sympy"}
"""SWE-bench's `log_parser` field -> the grader's runner; every other parser is pytest's."""
TEST_LABELS = "{test_labels}"
"""Placeholder in a recipe's test command: those files as Django's test labels (`tests/a/b.py` -> `a.b`)."""


class DatasetError(ValueError):
    """A dataset, recipes or predictions file is malformed; the message names the file and the field."""


class Recipe(BaseModel):
    """How to build and test one repository at one version (becomes the task's environment)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    python: str = "3.11"
    """The Python version the benchmark uses; the image gets the nearest one we have (`task.PYTHON_IMAGES`)."""
    base_image: str | None = None
    """An OS image to use instead of the one `python` picks."""
    apt_packages: list[str] = []
    """Debian packages for the env layer."""
    pip_packages: list[str] = ["pytest"]
    """Packages installed into the virtualenv before the repository (pin them: `name==version`)."""
    requirements: list[str] = []
    """Requirement files of the repository (read at `environment_setup_commit`, the first that exists) whose entries join `pip_packages`."""
    pip_uploaded_prior_to: str | None = None
    """ISO date: pip resolves unpinned packages as of that day (SWE-bench built its images in late 2024)."""
    pre_install: list[str] = []
    """Commands run in the repository before `install` (e.g. loosening a pin in setup.py)."""
    install: list[str] = ["python -m pip install -e ."]
    """Commands run in the repository after checkout; `{version}` becomes the instance's version (for setuptools-scm, which finds no tags)."""
    env: dict[str, str] = {}
    """Environment variables for the agent's shell and the test run."""
    env_setup: list[str] = []
    """Commands run as root in the env layer after the packages (`environment.env_setup`)."""
    services: list[Service] = []
    """Processes started beside the tests in every container (`environment.services`), e.g. a local httpbin."""
    cpus: float | None = None
    """CPU cores for the containers, when the tests need more than the default (SWE-bench gives some pylint versions 2)."""
    test_command: str = f"pytest -rA -p no:cacheprovider {TEST_FILES}"
    """The grader's command; `{test_files}` becomes the test patch's Python files, as SWE-bench runs them, and
    `{test_labels}` the same as Django's dotted labels (`tests/` and `.py` dropped)."""
    runner: RunnerName | None = None
    """How the grader reads results (`tests.runner`); by default from the instance's `log_parser`, else pytest."""


DEFAULT_RECIPE = Recipe()
RECIPES_FILE = "recipes/swebench.yaml"
"""The built-in recipe table (package data): `defaults` plus repo -> version (or "*") -> recipe."""


# ---------------------------------------------------------------- reading files


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The objects in a JSON list, a JSON object of objects, JSONL, or parquet file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    if path.suffix == ".parquet":
        return _read_parquet(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    stripped = text.lstrip()
    if not stripped:
        raise DatasetError(f"{path}: the file is empty")
    if stripped[0] in "[{":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if stripped[0] == "[" or "\n" not in stripped.strip():
                raise DatasetError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
            data = None  # more than one line starting with "{": JSONL
        if isinstance(data, list):
            records = data
        elif isinstance(data, dict):
            records = (
                [data]
                if "instance_id" in data
                else [{"instance_id": key, **value} if isinstance(value, dict) else value for key, value in data.items()]
            )
        else:
            records = _read_jsonl(path, text)
    else:
        raise DatasetError(f"{path}: expected JSON, JSONL or parquet, the file starts with {stripped[:20]!r}")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise DatasetError(f"{path}: record {index + 1}: expected an object, got {type(record).__name__}")
    return records


def _read_jsonl(path: Path, text: str) -> list[Any]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: line {number}: not valid JSON: {exc.msg}") from None
    return records


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet  # noqa: PLC0415 - optional dependency, only for parquet files
    except ImportError:
        raise DatasetError(f"{path}: reading parquet needs pyarrow (pip install 'swe-env[datasets]')") from None
    try:
        return pyarrow.parquet.read_table(path).to_pylist()
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's problem
        raise DatasetError(f"{path}: cannot read parquet: {exc}") from None


# ---------------------------------------------------------------- recipes


def parse_recipes(data: Any, where: str) -> dict[str, dict[str, Recipe]]:
    """A recipe table (`defaults` plus `{repo: {version or "*": recipe}}`) as Recipe models."""
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: expected a mapping of repo -> version -> recipe")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise DatasetError(f"{where}: 'defaults': expected a mapping of recipe fields")
    recipes: dict[str, dict[str, Recipe]] = {}
    for repo, versions in data.items():
        if repo == "defaults":
            continue
        if not isinstance(versions, dict):
            raise DatasetError(f"{where}: repo '{repo}': expected a mapping of version -> recipe")
        for version, fields in versions.items():
            try:
                recipes.setdefault(str(repo), {})[str(version)] = Recipe.model_validate({**defaults, **(fields or {})})
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(part) for part in first["loc"]) or "(recipe)"
                raise DatasetError(f"{where}: repo '{repo}' version '{version}': field '{field}': {first['msg']}") from None
    return recipes


@functools.lru_cache(maxsize=1)
def builtin_recipes() -> dict[str, dict[str, Recipe]]:
    """The recipe table shipped with swe-env (`swe_env/data/recipes/swebench.yaml`)."""
    text = importlib.resources.files("swe_env.data").joinpath(RECIPES_FILE).read_text(encoding="utf-8")
    return parse_recipes(yaml.safe_load(text), f"swe_env/data/{RECIPES_FILE}")


def load_recipes(path: str | Path | None) -> dict[str, dict[str, Recipe]]:
    """The built-in recipes, with a user's file (`{repo: {version or "*": recipe}}`) laid over them.

    A user's file may have its own `defaults`; they apply to that file's recipes only.
    """
    recipes = {repo: dict(versions) for repo, versions in builtin_recipes().items()}
    if path is None:
        return recipes
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "problem", None) or exc
        raise DatasetError(f"{path}: cannot read the recipes: {reason}") from None
    for repo, versions in parse_recipes(data, str(path)).items():
        recipes.setdefault(repo, {}).update(versions)
    return recipes


def recipe_for(repo: str, version: str | None, recipes: dict[str, dict[str, Recipe]] | None = None) -> Recipe | None:
    """The recipe for a repository at a version: exact version, then "*", then the "*" repo; None if none."""
    recipes = builtin_recipes() if recipes is None else recipes
    for key in (repo, "*"):
        versions = recipes.get(key, {})
        if version is not None and str(version) in versions:
            return versions[str(version)]
        if "*" in versions:
            return versions["*"]
    return None


def recipe_environment(recipe: Recipe, version: str | None, requirements_commit: str | None = None) -> dict[str, Any]:
    """A recipe as a task's `environment:` fields (`{version}` in its install commands becomes `version`, "0"
    without one); `requirements_commit` is where its requirement files are read (default: the task's base commit)."""
    environment: dict[str, Any] = {
        "apt_packages": recipe.apt_packages,
        "pip_packages": recipe.pip_packages,
        "requirements": recipe.requirements,
        "pip_uploaded_prior_to": recipe.pip_uploaded_prior_to,
        "install": [command.replace(VERSION, version or "0") for command in [*recipe.pre_install, *recipe.install]],
        "env": recipe.env,
        "env_setup": recipe.env_setup,
        "services": [service.model_dump() for service in recipe.services],
    }
    if requirements_commit and recipe.requirements:
        environment["requirements_commit"] = str(requirements_commit)
    if recipe.base_image is not None:
        environment["base_image"] = recipe.base_image
    else:
        environment["python"] = recipe.python
    return environment


def recipe_test_command(recipe: Recipe, python_files: list[str]) -> str:
    """A recipe's test command for these test files (`{test_files}`, `{test_labels}`); none: the command alone."""
    return (
        recipe.test_command.replace(TEST_FILES, " ".join(shlex.quote(p) for p in python_files))
        .replace(TEST_LABELS, " ".join(shlex.quote(django_label(p)) for p in python_files))
        .strip()
    )


def parse_recipe_name(text: str) -> tuple[str, str]:
    """`owner/name@version` as (repository, version); DatasetError says what is wrong with it."""
    repo, at, version = text.strip().rpartition("@")
    if not at or not re.fullmatch(r"[\w.-]+/[\w.-]+", repo) or not re.fullmatch(r"[\w.+-]+", version):
        raise DatasetError(f"'{text}': expected REPO@VERSION, e.g. psf/requests@2.27")
    return repo, version


def named_recipe(repo: str, version: str, recipes: dict[str, dict[str, Recipe]] | None = None) -> Recipe:
    """The recipe of exactly this repository (no "*" repository stands in) at `version` (or its "*" entry);
    DatasetError names the unknown repository, or the unknown version and the known ones."""
    recipes = builtin_recipes() if recipes is None else recipes
    versions = recipes.get(repo)
    if not versions:
        known = sorted(name for name in recipes if name != "*")
        raise DatasetError(f"unknown repository '{repo}' (no recipe for it; known: {', '.join(known)})")
    if version in versions:
        return versions[version]
    if "*" in versions:
        return versions["*"]
    raise DatasetError(f"unknown version '{version}' of {repo}; known: {', '.join(sorted(versions, key=_version_key))}")


def _version_key(version: str) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"[.]", version))


def eval_script_test_command(script: str | None) -> str | None:
    """The test command of a SWE-bench eval script: the lines between its output markers."""
    if not script or START_TEST_OUTPUT not in script:
        return None
    body = script.split(START_TEST_OUTPUT, 1)[1].split("\n", 1)[-1]
    body = body.split(END_TEST_OUTPUT, 1)[0]
    lines = [line for line in body.splitlines() if line.strip()]
    if lines and lines[-1].lstrip().startswith(":"):  # the `: '>>>>> End ...'` no-op itself
        lines.pop()
    command = "\n".join(lines).strip()
    return command or None


def eval_script_activation(script: str | None) -> str | None:
    """How a SWE-bench eval script activates its environment (`source ... && conda activate testbed`), or None.

    The `source` and `conda activate` lines before the script's first other command."""
    found = []
    for line in (script or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("set "):
            continue
        if not (line.startswith("source ") or line.startswith(". ") or line.startswith("conda activate ")):
            break
        found.append(line)
    return " && ".join(found) or None


# ---------------------------------------------------------------- instances → tasks


def resolve_repo(repo: str, mirror: str | Path | None = None) -> str:
    """Where git finds `repo`: a mirror entry (`owner__name`, `.git`, `.bundle`), else GitHub."""
    if "://" in repo or repo.startswith("git@") or not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        return repo
    if mirror is None:
        return f"https://github.com/{repo}.git"
    folder = Path(mirror).expanduser().resolve()
    stem = repo.replace("/", "__")
    for candidate in (folder / f"{stem}.bundle", folder / f"{stem}.git", folder / stem, folder / repo):
        if candidate.exists():
            return str(candidate)
    raise DatasetError(f"{folder}: no mirror of {repo} (expected {stem}, {stem}.git or {stem}.bundle in it)")


def instance_to_task(
    record: dict[str, Any], recipes: dict[str, dict[str, Recipe]] | None = None, repo_mirror: str | Path | None = None, where: str = "instance"
) -> Task:
    """One SWE-bench instance as a task; DatasetError names `where` and the field on a problem."""
    instance_id = record.get("instance_id")
    label = f"{where} ('{instance_id}')" if isinstance(instance_id, str) else where
    for name in REQUIRED_FIELDS:
        if record.get(name) is None:
            raise DatasetError(f"{label}: field '{name}': required field is missing")
    for name in ("instance_id", "repo", "base_commit", "patch", "test_patch"):
        if not isinstance(record[name], str):
            raise DatasetError(f"{label}: field '{name}': must be a string")
    fail_to_pass = _id_list(record["FAIL_TO_PASS"], label, "FAIL_TO_PASS")
    pass_to_pass = _id_list(record["PASS_TO_PASS"], label, "PASS_TO_PASS")
    version = record.get("version")
    version = None if version is None else str(version)
    found = recipe_for(record["repo"], version, recipes)
    recipe = found or DEFAULT_RECIPE
    try:
        test_files = [p.path for p in diffs.parse(record["test_patch"]) if p.new_path]
    except diffs.DiffError as exc:
        raise DatasetError(f"{label}: field 'test_patch': {exc}") from None
    for name in ("eval_script", "log_parser", "eval_type", "image"):
        if record.get(name) is not None and not isinstance(record[name], str):
            raise DatasetError(f"{label}: field '{name}': must be a string")
    # The instance's own test command, when the dataset carries one, is the benchmark's truth.
    command = eval_script_test_command(record.get("eval_script"))
    if command is None:
        command = recipe_test_command(recipe, [path for path in test_files if path.endswith(".py")])
    runner = recipe.runner or RUNNER_OF_LOG_PARSER.get(str(record.get("log_parser")), "pytest")
    meta = {"source": "swe-bench", "repo": record["repo"], "recipe": "built-in or --recipes" if found else "none (default)"}
    for name in ("version", "environment_setup_commit", "created_at", "log_parser", "eval_type", "image"):
        if record.get(name) is not None:
            meta[name] = str(record[name])
    environment = recipe_environment(recipe, version, record.get("environment_setup_commit"))
    if record.get("image"):  # the benchmark's own instance image, used when the engine has it (`--images`)
        environment["image"] = str(record["image"])
        environment["activate"] = eval_script_activation(record.get("eval_script"))
    if recipe.base_image is None:
        meta["python_requested"], meta["python_used"] = recipe.python, nearest_python(recipe.python)
    data = {
        "id": record["instance_id"],
        "repo": resolve_repo(record["repo"], repo_mirror),
        "base_commit": record["base_commit"],
        "problem_statement": record.get("problem_statement") or f"(no problem statement for {instance_id})",
        "environment": environment,
        "tests": {
            "test_patch": record["test_patch"],
            "fail_to_pass": fail_to_pass,
            "pass_to_pass": pass_to_pass,
            "command": command,
            "runner": runner,
        },
        "gold_patch": record["patch"],
        "meta": meta,
    }
    if recipe.cpus is not None:
        data["limits"] = {"cpus": recipe.cpus}
    try:
        return Task.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise DatasetError(f"{label}: field '{field}': {first['msg'].removeprefix('Value error, ')}") from None


def django_label(path: str) -> str:
    """A test file as the label Django's runtests.py takes, as SWE-bench makes it: `tests/a/b.py` -> `a.b`."""
    path = path.removesuffix(".py")
    return path.removeprefix("tests/").replace("/", ".")


def _id_list(value: Any, label: str, name: str) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            raise DatasetError(f"{label}: field '{name}': a string that is not a JSON list") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DatasetError(f"{label}: field '{name}': must be a list of test ids (or a JSON string of one)")
    return value


def load_instances(path: str | Path, repo_mirror: str | Path | None = None, recipes: dict[str, dict[str, Recipe]] | None = None) -> list[Task]:
    """Tasks for every instance of a SWE-bench file, sorted by id; duplicate ids are an error."""
    tasks: dict[str, Task] = {}
    for index, record in enumerate(read_records(path), 1):
        task = instance_to_task(record, recipes, repo_mirror, where=f"{path}: record {index}")
        if task.id in tasks:
            raise DatasetError(f"{path}: record {index}: field 'instance_id': duplicate id '{task.id}'")
        tasks[task.id] = task
    if not tasks:
        raise DatasetError(f"{path}: no instances in the file")
    return [tasks[key] for key in sorted(tasks)]


def load_dataset(path: str | Path, repo_mirror: str | Path | None = None, recipes: dict[str, dict[str, Recipe]] | None = None) -> list[Task]:
    """Tasks from task files (a folder, or a .yaml file) or from a SWE-bench instances file."""
    path = Path(path)
    if path.is_dir() or path.suffix in (".yaml", ".yml"):
        return load_tasks(path)
    return load_instances(path, repo_mirror, recipes)


def import_instances(
    path: str | Path, out: str | Path, repo_mirror: str | Path | None = None, recipes: dict[str, dict[str, Recipe]] | None = None
) -> list[Path]:
    """Write `<out>/<instance_id>/task.yaml` for every instance; returns the files written."""
    out = Path(out)
    written = [write_task_file(task, out / task.id) for task in load_instances(path, repo_mirror, recipes)]
    # Whatever YAML chose for a patch, it must read back byte for byte.
    for target, task in zip(written, load_instances(path, repo_mirror, recipes), strict=True):
        check_round_trip(target, task)
    return written


# ---------------------------------------------------------------- predictions


class Prediction(BaseModel):
    """One model's patch for one instance (SWE-bench's predictions format)."""

    model_config = ConfigDict(frozen=True)

    instance_id: str
    model_name_or_path: str
    model_patch: str | None = None
    """The diff; None or "" is an empty patch."""


def load_predictions(spec: str | Path, tasks: list[Task]) -> list[Prediction]:
    """Predictions from a file (JSON list, JSON object keyed by id, JSONL), or `gold` / `empty` for every task."""
    if str(spec) in ("gold", "empty"):
        return [Prediction(instance_id=t.id, model_name_or_path=str(spec), model_patch=(t.gold_patch or "") if spec == "gold" else "") for t in tasks]
    path = Path(spec)
    known = {t.id for t in tasks}
    predictions: dict[tuple[str, str], Prediction] = {}
    for index, record in enumerate(read_records(path), 1):
        label = f"{path}: prediction {index}"
        if isinstance(record.get("instance_id"), str):
            label += f" ('{record['instance_id']}')"
        for name in ("instance_id", "model_name_or_path"):
            if not isinstance(record.get(name), str) or not record[name].strip():
                raise DatasetError(f"{label}: field '{name}': {'required field is missing' if name not in record else 'must be a non-empty string'}")
        if "model_patch" not in record:
            raise DatasetError(f"{label}: field 'model_patch': required field is missing")
        if record["model_patch"] is not None and not isinstance(record["model_patch"], str):
            raise DatasetError(f"{label}: field 'model_patch': must be a string or null")
        prediction = Prediction(instance_id=record["instance_id"], model_name_or_path=record["model_name_or_path"], model_patch=record["model_patch"])
        if prediction.instance_id not in known:
            raise DatasetError(f"{label}: field 'instance_id': '{prediction.instance_id}' is not in the dataset")
        key = (prediction.model_name_or_path, prediction.instance_id)
        if key in predictions:
            raise DatasetError(f"{label}: field 'instance_id': a second prediction of the same model for this instance")
        predictions[key] = prediction
    if not predictions:
        raise DatasetError(f"{path}: no predictions in the file")
    return list(predictions.values())
