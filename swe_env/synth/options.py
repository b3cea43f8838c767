"""What a synthesis run is asked to do: `SynthConfig` (the options of `swe-env synthesize`), the methods, and the
checks that turn a wrong option into one line before anything is made; `base_task`, the clean tree as the task every
worker's container comes from."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..data.task import DEFAULT_TEST_COMMAND, Environment, Task, TestSpec
from . import combine, history, procedural, recipes
from . import model as model_method
from .refs import default_environment
from .writer import mirrored, resolve

METHODS = {
    procedural.METHOD: "AST mutations of functions the passing tests reach",
    history.METHOD: "past commits' source changes undone on the chosen tree",
    model_method.METHOD: "a model rewrites a reached function with a bug, or writes its masked body (--model)",
    combine.METHOD: "two validated bugs of one file or folder in one task",
}
DEFAULT_METHODS = [procedural.METHOD, history.METHOD, combine.METHOD]
"""Methods used when none are named (and `model` too when an endpoint is given)."""


class SynthesisError(ValueError):
    """Synthesis cannot start or go on (a repository whose suite has no passing test, an unknown method); one line."""


class SynthConfig(BaseModel):
    """What `swe-env synthesize` makes (its options)."""

    model_config = ConfigDict(extra="forbid")

    repo: str
    """A git repository (a working folder, a bare repository or a bundle)."""
    commit: str = "HEAD"
    """The tree the bugs go into."""
    name: str | None = None
    """The repository's short name in task ids and statements (default: the folder's or the bundle's name)."""
    environment: Environment | None = None
    """How the image is built; default pytest plus `pip install -e .` when the tree is a package (or `recipe`'s)."""
    recipe: str | None = None
    """`owner/name@version` (`psf/requests@2.27`): the image is built from the SWE-bench recipe of that repository
    and version, as `tasks import-swebench` builds that repository's instances (the built-in table
    `data/recipes/swebench.yaml`, with `recipes` laid over it); its test command is the run's unless
    `test_command` is given. Not with `environment`; the recipe must run pytest."""
    recipes: Path | None = None
    """A YAML/JSON file of recipes (repo -> version or "*" -> recipe) laid over the built-in ones for `recipe`, as
    the other commands' `--recipes`."""
    test_command: str = DEFAULT_TEST_COMMAND
    """The command that runs the suite (pytest; node ids are appended to run some of it)."""
    out: Path
    """Folder the task folders (and the state of the run) go to."""
    max_tasks: int = Field(default=100, gt=0)
    """Tasks in `out` at which the run stops (those of earlier runs count)."""
    max_candidates: int | None = Field(default=None, gt=0)
    """Candidates tried at most in this run; default five per task still wanted."""
    methods: list[str] | None = None
    """Methods used (`METHODS`); default `DEFAULT_METHODS`, plus `model` when `model` is given."""
    kinds: list[str] | None = None
    """Kinds used (`procedural.KINDS`, `model.KINDS`); default all of the chosen methods'."""
    functions: list[str] | None = None
    """Only these functions are mutated (qualified names like `Class.method`, or `path::name`); default every one
    the passing tests reach."""
    model: str | None = None
    """An OpenAI-compatible endpoint (the API root, …/v1) for the `model` method; given, it also writes every task's
    problem statement. The key is read from $OPENAI_API_KEY."""
    model_name: str | None = None
    """The model asked (default: the first one the endpoint lists)."""
    model_timeout: float = Field(default=120.0, gt=0)
    """Seconds one model request may take."""
    model_retries: int = Field(default=2, ge=0)
    """Retries of a model request after a timeout, 429 or 5xx (then the candidate is rejected with the cause)."""
    model_temperature: float = 0.7
    """Sampling temperature of the model's bugs."""
    workers: int = Field(default=1, gt=0)
    """Containers (and threads) validating candidates at once."""
    hide_tests: bool = False
    """Take the failing tests out of the task's tree (they come back through the test patch); default they stay visible."""
    max_fail_to_pass: int = Field(default=20, gt=0)
    """A candidate breaking more tests than this is dropped (it breaks everything, not one behaviour)."""
    seed: int = 0
    """Seed of the candidates' order."""
    max_minutes: float | None = Field(default=None, gt=0)
    """Wall time after which no new candidate starts (the run's whole time, image and learning included); learning
    the suite is stopped at it too (a run that cannot learn its suite in time makes no task)."""
    learn_timeout: float | None = Field(default=None, gt=0)
    """Seconds each of the two learning runs of the suite may take. Default: the untraced run the grader's default
    bound (`Limits.grading_timeout`, 600 s), the traced run `learning.TRACED_FACTOR` (20) times what the untraced
    run took, and never less than that bound: the tracer's cost grows with the suite and with the machine's load,
    and the untraced run has just measured both. Given, it bounds both runs as it is."""


def chosen_methods(config: SynthConfig) -> list[str]:
    """The methods a run uses: those named, else `DEFAULT_METHODS` (and `model` when an endpoint is given)."""
    if config.methods:
        return list(dict.fromkeys(config.methods))
    return DEFAULT_METHODS[:2] + ([model_method.METHOD] if config.model else []) + DEFAULT_METHODS[2:]


def check_names(config: SynthConfig, methods: list[str]) -> None:
    """A method, a kind or a recipe that does not exist stops the run in one line, before anything is made."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SynthesisError(f"--methods: unknown method {unknown[0]!r}; known: {', '.join(METHODS)}")
    known_kinds = [*procedural.KINDS, *model_method.KINDS]
    unknown = [k for k in config.kinds or [] if k not in known_kinds]
    if unknown:
        raise SynthesisError(f"--kinds: unknown kind {unknown[0]!r}; known: {', '.join(known_kinds)}")
    chosen_recipe(config)


def chosen_recipe(config: SynthConfig) -> recipes.RecipeChoice | None:
    """The recipe the run builds from (None without `recipe`); a one-line error naming the option otherwise."""
    if config.recipe is None:
        if config.recipes is not None:
            raise SynthesisError("--recipes: used only with --recipe REPO@VERSION")
        return None
    if config.environment is not None:
        raise SynthesisError("--environment and --recipe: give one of them (an environment file or a SWE-bench recipe)")
    return recipes.choose(config.recipe, config.recipes)


def base_task(config: SynthConfig) -> tuple[Task, str, str]:
    """The task whose image every worker's container comes from (the clean tree at `config.commit`; its environment
    and test command are the run's), the git dir of the host's mirror of the repository, and its short name."""
    recipe = chosen_recipe(config)
    location = str(Path(config.repo).expanduser().resolve()) if Path(config.repo).expanduser().exists() else config.repo
    git_dir = mirrored(location)
    sha = resolve(git_dir, config.commit)
    name = config.name or Path(location.rstrip("/")).name.removesuffix(".git").removesuffix(".bundle") or "repo"
    command = config.test_command
    if recipe is not None and "test_command" not in config.model_fields_set:
        command = recipe.test_command
    environment = recipe.environment if recipe else config.environment or default_environment(git_dir, sha)
    base = Task(
        id=f"{name}-synth-{sha[:10]}",
        repo=location,
        base_commit=sha,
        problem_statement="(synthesis base)",
        environment=environment,
        tests=TestSpec(fail_to_pass=["(synthesis)"], command=command),
        meta={"recipe": recipe.name} if recipe else {},
    )
    return base, git_dir, name


def connect_model(config: SynthConfig, methods: list[str]) -> tuple[model_method.ModelMethod | None, str]:
    """The model endpoint, asked once before anything is built, and the model's name; (None, '') without `--model`."""
    if not config.model:
        if model_method.METHOD in methods:
            raise SynthesisError("--methods model needs an endpoint: --model URL (an OpenAI-compatible API root, …/v1)")
        return None, ""
    try:
        asker = model_method.ModelMethod(
            config.model, config.model_name, timeout=config.model_timeout, retries=config.model_retries, temperature=config.model_temperature
        )
        return asker, asker.check()
    except ValueError as exc:
        raise SynthesisError(str(exc)) from None
