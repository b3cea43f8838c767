"""A synthesis run's image from a SWE-bench recipe (`--recipe REPO@VERSION`, `--recipes FILE`).

The recipe is the one `swe-env tasks import-swebench` would give an instance of that repository and
version (`importers.swebench`: the built-in table with a user's file laid over it, and the same
recipe -> environment fields), so a synthesized task builds like the benchmark's own. Synthesis
learns the suite and runs single tests through pytest, so a recipe whose tests run otherwise
(Django's runtests.py, sympy's bin/test) is refused in one line.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from ..data.task import Environment
from ..importers import swebench


class RecipeError(ValueError):
    """The recipe a run names cannot be used; one line naming the option and the cause."""


@dataclass(frozen=True)
class RecipeChoice:
    """What a recipe gives a synthesis run."""

    name: str
    """`owner/name@version` as given (recorded in each task's `meta.recipe`)."""
    environment: Environment
    test_command: str
    """The recipe's test command without its per-instance placeholders (`{test_files}`, `{test_labels}`)."""


def runs_pytest(command: str) -> bool:
    """Whether a test command runs pytest directly (`pytest ...`, `py.test ...`, `python -m pytest ...`): the forms
    the tracer can run a suite under (`traces.tracer.runner.with_corpus_plugin`)."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return False
    if not argv:
        return False
    program = argv[0].rsplit("/", 1)[-1]
    if program in ("pytest", "py.test"):
        return True
    rest = argv[1:]
    while rest and rest[0] in ("-u", "-B", "-E", "-s", "-q"):
        rest = rest[1:]
    return program.startswith("python") and rest[:2] in (["-m", "pytest"], ["-m", "py.test"])


def choose(name: str, recipes_file: Path | None = None) -> RecipeChoice:
    """The environment and test command of the recipe `name` (`owner/name@version`) names, from the built-in
    recipes with `recipes_file` laid over them; RecipeError names `--recipes` or `--recipe` and the cause."""
    try:
        recipes = swebench.load_recipes(recipes_file)
    except swebench.DatasetError as exc:
        raise RecipeError(f"--recipes: {exc}") from None
    try:
        repo, version = swebench.parse_recipe_name(name)
        recipe = swebench.named_recipe(repo, version, recipes)
    except swebench.DatasetError as exc:
        raise RecipeError(f"--recipe: {exc}") from None
    command = swebench.recipe_test_command(recipe, [])
    if (recipe.runner or "pytest") != "pytest" or not runs_pytest(command):
        raise RecipeError(f"--recipe: {name}: its tests run with `{command}`, not pytest; synthesis needs a pytest suite")
    try:
        environment = Environment.model_validate(swebench.recipe_environment(recipe, version))
    except ValueError as exc:  # a user's recipe whose fields the task model refuses
        raise RecipeError(f"--recipe: {name}: {' '.join(str(exc).split())[:300]}") from None
    return RecipeChoice(name.strip(), environment, command)
