"""`swe-env synthesize --recipe REPO@VERSION [--recipes FILE]`: a run's image from a SWE-bench recipe.

Pure tests of the parsing, the lookup and the recipe -> environment mapping (the one `tasks import-swebench` uses
too), the one-line errors through the command; and one run on the real engine from the bundled slugkit
repository with its recipe in a small `--recipes` file (pytest only, so nothing comes from PyPI).
"""

from __future__ import annotations

import pytest

from swe_env.build.images import ImageBuilder
from swe_env.data.task import Environment, load_tasks
from swe_env.grading.grader import Grader
from swe_env.importers import swebench
from swe_env.importers.swebench import DatasetError
from swe_env.run import validation
from swe_env.synth import pipeline, recipes

from ..helpers import ROOT, SAMPLE_PIP_PACKAGES, swebench_records, write_sample_recipe
from ..helpers import run_cli as cli

SLUGKIT = str(ROOT / "tasks/repos/slugkit.bundle")


@pytest.mark.parametrize("text", ["flask", "pallets/flask", "pallets/flask@", "@2.3", "a/b/c@1.0", "pallets/flask@2 3"])
def test_a_malformed_recipe_name_is_refused(text):
    with pytest.raises(DatasetError, match=r"expected REPO@VERSION, e\.g\. psf/requests@2\.27"):
        swebench.parse_recipe_name(text)


def test_a_recipe_name_is_repository_and_version():
    assert swebench.parse_recipe_name("psf/requests@2.27") == ("psf/requests", "2.27")
    assert swebench.parse_recipe_name(" astropy/astropy@v5.3 ") == ("astropy/astropy", "v5.3")


def test_the_named_recipe_is_exact_or_the_repositorys_star():
    table = swebench.load_recipes(None)
    assert swebench.named_recipe("pallets/flask", "2.3", table) == table["pallets/flask"]["2.3"]
    assert swebench.named_recipe("psf/requests", "2.27", table) == table["psf/requests"]["*"]  # every version
    with pytest.raises(DatasetError, match=r"unknown version '9\.9' of pallets/flask; known: 2\.0, 2\.1, 2\.2, 2\.3, 3\.0, 3\.1$"):
        swebench.named_recipe("pallets/flask", "9.9", table)
    # A "*" repository (a user's catch-all) does not stand in for a repository synthesis names.
    table["*"] = {"*": swebench.DEFAULT_RECIPE}
    with pytest.raises(DatasetError, match=r"unknown repository 'someone/else' \(no recipe for it; known: .*psf/requests"):
        swebench.named_recipe("someone/else", "1.0", table)


def test_a_recipe_becomes_environment_fields_in_one_place():
    table = swebench.parse_recipes(
        {
            "o/r": {
                "1.2": {
                    "python": "3.9",
                    "apt_packages": ["gcc"],
                    "pip_packages": ["pytest==7.4.4"],
                    "requirements": ["dev.txt"],
                    "pre_install": ["pip install setuptools==70.0.0"],
                    "install": ["V={version} pip install -e ."],
                    "env": {"A": "1"},
                    "pip_uploaded_prior_to": "2024-10-25",
                },
                "2.0": {"base_image": "debian:trixie"},
            }
        },
        "r.yaml",
    )
    fields = swebench.recipe_environment(table["o/r"]["1.2"], "1.2")
    environment = Environment.model_validate(fields)
    assert environment.python == "3.9" and environment.os_image == "debian:bullseye"
    assert environment.install == ["pip install setuptools==70.0.0", "V=1.2 pip install -e ."]
    assert environment.apt_packages == ["gcc"] and environment.pip_packages == ["pytest==7.4.4"]
    assert environment.requirements == ["dev.txt"] and environment.requirements_commit is None
    assert environment.env == {"A": "1"} and environment.pip_uploaded_prior_to == "2024-10-25"
    assert swebench.recipe_environment(table["o/r"]["1.2"], None)["install"][1] == "V=0 pip install -e ."
    assert swebench.recipe_environment(table["o/r"]["1.2"], "1.2", "abc")["requirements_commit"] == "abc"
    assert "requirements_commit" not in swebench.recipe_environment(table["o/r"]["2.0"], "2.0", "abc")
    other = Environment.model_validate(swebench.recipe_environment(table["o/r"]["2.0"], "2.0"))
    assert other.base_image == "debian:trixie" and other.python is None


def test_an_imported_instance_gets_the_same_environment(tasks):
    record = {**swebench_records(tasks[:1])[0], "repo": "pallets/flask", "version": "2.3"}
    task = swebench.instance_to_task(record)
    recipe = swebench.builtin_recipes()["pallets/flask"]["2.3"]
    expected = swebench.recipe_environment(recipe, "2.3", record["environment_setup_commit"])
    assert task.environment == Environment.model_validate(expected)
    assert task.tests.command == swebench.recipe_test_command(recipe, ["tests/test_dates.py", "tests/test_interest.py"])


def test_a_synthesis_recipe_gives_the_environment_and_the_pytest_command():
    flask = recipes.choose("pallets/flask@2.3")
    assert flask.environment.python == "3.11" and flask.environment.requirements == ["requirements/dev.txt"]
    assert flask.environment.install[-1] == "python -m pip install -e ."
    assert flask.test_command == "pytest -rA -p no:cacheprovider" and flask.name == "pallets/flask@2.3"
    for name in ("django/django@4.2", "sympy/sympy@1.13"):
        with pytest.raises(recipes.RecipeError, match=rf"^--recipe: {name}: its tests run with `.*`, not pytest"):
            recipes.choose(name)


@pytest.mark.parametrize(
    ("command", "pytest_"),
    [
        ("pytest -rA", True),
        ("/opt/venv/bin/py.test", True),
        ("python -m pytest -rA", True),
        ("python3.9 -u -m pytest", True),
        ("./tests/runtests.py --verbosity 2", False),
        ("bin/test -C", False),
        ("tox -e py39 -- x", False),
        ("", False),
        ("python setup.py test", False),
        ("PYTHONWARNINGS=x pytest", False),
        ("pytest 'unclosed", False),
    ],
)
def test_which_commands_run_pytest(command, pytest_):
    assert recipes.runs_pytest(command) is pytest_


def test_the_recipes_file_is_laid_over_the_builtin_ones(tmp_path):
    mine = write_sample_recipe(tmp_path / "mine.yaml", "pallets/flask", "2.3", env={"X": "1"})
    assert recipes.choose("pallets/flask@2.3", mine).environment.env == {"X": "1"}
    assert recipes.choose("pallets/flask@2.2").environment.env == {}
    with pytest.raises(recipes.RecipeError, match=r"^--recipes: .*nothing\.yaml: cannot read the recipes"):
        recipes.choose("pallets/flask@2.3", tmp_path / "nothing.yaml")


def test_the_base_task_takes_the_recipes_environment_and_command(tmp_path):
    mine = write_sample_recipe(tmp_path / "r.yaml", "swe-env/slugkit", "0.1", install=["echo {version}"])
    config = pipeline.SynthConfig(repo=SLUGKIT, recipe="swe-env/slugkit@0.1", recipes=mine, out=tmp_path / "out")
    base, _git_dir, name = pipeline.base_task(config)
    assert name == "slugkit" and base.meta["recipe"] == "swe-env/slugkit@0.1"
    assert base.environment.pip_packages == SAMPLE_PIP_PACKAGES and base.environment.install == ["echo 0.1"]
    assert base.tests.command == "pytest -rA -p no:cacheprovider"  # the Recipe model's default command, placeholder gone
    given = config.model_copy(update={"test_command": "python -m pytest -x"})
    given.model_fields_set.add("test_command")
    assert pipeline.base_task(given)[0].tests.command == "python -m pytest -x"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--recipe", "pallets/flask"], "--recipe: 'pallets/flask': expected REPO@VERSION, e.g. psf/requests@2.27"),
        (["--recipe", "someone/else@1.0"], "--recipe: unknown repository 'someone/else' (no recipe for it; known:"),
        (["--recipe", "pallets/flask@9.9"], "--recipe: unknown version '9.9' of pallets/flask; known: 2.0, 2.1, 2.2, 2.3, 3.0, 3.1"),
        (["--recipe", "psf/requests@2.27", "--environment", "ENV"], "--environment and --recipe: give one of them"),
        (["--recipes", "RECIPES"], "--recipes: used only with --recipe REPO@VERSION"),
        (["--recipe", "psf/requests@2.27", "--recipes", "MISSING"], "--recipes: "),
    ],
)
def test_the_commands_mistakes_are_one_line(tmp_path, options, message):
    (tmp_path / "env.yaml").write_text("environment:\n  pip_packages: [pytest]\n")
    places = {
        "ENV": str(tmp_path / "env.yaml"),
        "RECIPES": str(write_sample_recipe(tmp_path / "r.yaml", "a/b", "1")),
        "MISSING": str(tmp_path / "missing.yaml"),
    }
    out = tmp_path / "out"
    printed = cli("synthesize", "--repo", SLUGKIT, "--out", str(out), *[places.get(o, o) for o in options])
    errors = [line for line in printed.stderr.splitlines() if line.startswith("error: ")]
    assert printed.returncode == 2 and len(errors) == 1 and "Traceback" not in printed.stderr, printed.stderr
    assert message in errors[0]
    assert not out.exists()  # refused before anything was made


def test_synthesis_from_a_recipe_on_the_real_engine(tmp_path, docker_client):
    """slugkit's recipe in a `--recipes` file: its environment, `{version}` and test command reach every task, and
    a task made so passes `validate`."""
    mine = write_sample_recipe(
        tmp_path / "recipes.yaml",
        "swe-env/slugkit",
        "0.1",
        install=["echo slugkit {version}"],
        env={"SLUGKIT_FROM": "recipe"},
        test_command="python -m pytest -p no:cacheprovider -rA {test_files}",
    )
    out = tmp_path / "tasks"
    printed = cli(
        "synthesize",
        "--repo",
        SLUGKIT,
        "--recipe",
        "swe-env/slugkit@0.1",
        "--recipes",
        str(mine),
        "--out",
        str(out),
        "--max-tasks",
        "3",
        "--max-candidates",
        "20",
        "--methods",
        "procedural",
        "--workers",
        "1",
    )
    assert printed.returncode == 0, printed.stdout + printed.stderr
    found = load_tasks(out)
    assert len(found) == 3, printed.stdout
    for task in found:
        assert task.meta["recipe"] == "swe-env/slugkit@0.1" and task.meta["method"] == "procedural"
        assert task.environment.install == ["echo slugkit 0.1"] and task.environment.env == {"SLUGKIT_FROM": "recipe"}
        assert task.environment.pip_packages == SAMPLE_PIP_PACKAGES
        assert task.tests.command == "python -m pytest -p no:cacheprovider -rA" and task.tests.fail_to_pass
    builder = ImageBuilder()
    results = validation.validate_tasks(found[:1], workers=1, builder=builder, grader=Grader(builder=builder))
    assert [(r.task_id, r.verdict, r.violations) for r in results] == [(found[0].id, "valid", [])]
    assert results[0].gold.resolved and not results[0].empty.resolved
