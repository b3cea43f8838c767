"""Two small repositories written here whose tests do not run under pytest, as Django's and sympy's.

`shelfkit` runs its tests with a `tests/runtests.py` and `test_sqlite` settings on the real
Django from PyPI (unittest underneath), and its instance lists ids in every form SWE-bench's
Django datasets use: `name (module.Class)`, Python 3.11's `name (module.Class.name)`, and a
test's docstring line. `polykit` runs its tests through sympy's own runner (`bin/test`, using
the real sympy's `SymPyTests` and `PyTestReporter`), with ids as bare function names. In each
instance one FAIL_TO_PASS test fails and one errors before the fix.

`write_sample(folder, name)` makes the git repository, a SWE-bench JSONL file and a recipes
file; it uses only git and the standard library.
"""

from __future__ import annotations

import json
from pathlib import Path

from .swebench_sample import _git

# ---------------------------------------------------------------- shelfkit (Django)

SHELFKIT = '''\
"""shelfkit: helpers for a small library catalogue."""


def shelf_mark(author, year):
    """'Ada Lovelace', 1843 -> 'LOV-1843'."""
    surname = author.split()[0]
    return "%s-%d" % (surname[:3].upper(), year)


def isbn_digits(text):
    """'0-306-40615-2' -> [0, 3, 0, 6, 4, 0, 6, 1, 5, 2]; an 'X' check digit is 10."""
    return [int(c) for c in text.replace("-", "")]
'''

SHELFKIT_FIXED = SHELFKIT.replace("author.split()[0]", "author.split()[-1]").replace(
    '[int(c) for c in text.replace("-", "")]', '[10 if c in "xX" else int(c) for c in text.replace("-", "")]'
)

RUNTESTS = '''\
#!/usr/bin/env python
"""Runs the catalogue's tests the way Django's own tests/runtests.py does: labels relative to tests/."""
import argparse
import os
import sys

import django
from django.conf import settings
from django.test.utils import get_runner


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("labels", nargs="*")
    parser.add_argument("--verbosity", type=int, default=1)
    parser.add_argument("--settings", default="test_sqlite")
    parser.add_argument("--parallel", type=int, default=0)
    args = parser.parse_args()
    os.environ["DJANGO_SETTINGS_MODULE"] = args.settings
    django.setup()
    runner = get_runner(settings)(verbosity=args.verbosity, parallel=args.parallel, interactive=False)
    failures = runner.run_tests(args.labels or ["shelf"])
    sys.exit(bool(failures))


if __name__ == "__main__":
    main()
'''

TEST_SQLITE = """\
SECRET_KEY = "shelfkit-tests"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3"}}
INSTALLED_APPS = ["django.contrib.contenttypes", "shelf"]
USE_TZ = False
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
"""

SHELF_TESTS = '''\
from django.contrib.contenttypes.models import ContentType
from django.test import SimpleTestCase, TestCase

from shelfkit import isbn_digits, shelf_mark


class ShelfMarkTests(SimpleTestCase):
    def test_year(self):
        self.assertTrue(shelf_mark("Ada", 1843).endswith("-1843"))

    def test_single_name(self):
        """A one-word author name is its own surname."""
        self.assertEqual(shelf_mark("Homer", 700), "HOM-700")


class IsbnTests(SimpleTestCase):
    def test_plain_digits(self):
        self.assertEqual(isbn_digits("0-306-40615-2"), [0, 3, 0, 6, 4, 0, 6, 1, 5, 2])


class CatalogueDatabaseTests(TestCase):
    def test_content_types_exist(self):
        self.assertTrue(ContentType.objects.filter(app_label="contenttypes").exists())
'''

SHELF_NEW_TESTS = '''

class SurnameTests(SimpleTestCase):
    def test_surname_is_the_last_name(self):
        """The shelf mark is made from the author's surname."""
        self.assertEqual(shelf_mark("Ada Lovelace", 1843), "LOV-1843")


class IsbnCheckDigitTests(SimpleTestCase):
    def test_x_check_digit(self):
        self.assertEqual(isbn_digits("0-8044-2957-X")[-1], 10)
'''

DJANGO_FILES = {
    "shelfkit/__init__.py": SHELFKIT,
    "tests/runtests.py": RUNTESTS,
    "tests/test_sqlite.py": TEST_SQLITE,
    "tests/shelf/__init__.py": "",
    "tests/shelf/tests.py": SHELF_TESTS,
    "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
    '[project]\nname = "shelfkit"\nversion = "1.0"\n\n[tool.setuptools]\npackages = ["shelfkit"]\n',
}
DJANGO_FAIL_TO_PASS = [
    "The shelf mark is made from the author's surname.",  # a docstring line: fails before the fix
    "test_x_check_digit (shelf.tests.IsbnCheckDigitTests)",  # before Python 3.11: errors before the fix
]
DJANGO_PASS_TO_PASS = [
    "test_year (shelf.tests.ShelfMarkTests.test_year)",  # Python 3.11's form
    "A one-word author name is its own surname.",
    "test_plain_digits (shelf.tests.IsbnTests)",
    "test_content_types_exist (shelf.tests.CatalogueDatabaseTests)",
]

# ---------------------------------------------------------------- polykit (sympy's runner)

POLYKIT = '''\
"""polykit: small polynomial helpers on sympy."""
from sympy import Poly


def total_degree(expr, *gens):
    """The total degree of a polynomial in `gens` (all its symbols when none are given)."""
    return Poly(expr, *gens).degree(gens[0])
'''

POLYKIT_FIXED = POLYKIT.replace("Poly(expr, *gens).degree(gens[0])", "Poly(expr, *gens).total_degree()")

BIN_TEST = '''\
#!/usr/bin/env python
"""Runs polykit's tests with sympy's own runner, as sympy's bin/test does for sympy."""
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, root)
if "-C" in sys.argv:
    os.environ["SYMPY_USE_CACHE"] = "no"

from sympy.testing.runtests import PyTestReporter, SymPyTests

reporter = PyTestReporter(verbose="--verbose" in sys.argv)
tests = SymPyTests(reporter)
reporter.root_dir(root)
tests._testfiles.extend(os.path.join(root, arg) for arg in sys.argv[1:] if not arg.startswith("-"))
sys.exit(0 if tests.test(sort=True) else 1)
'''

POLY_TESTS = """\
from sympy import symbols
from sympy.testing.pytest import XFAIL, raises

from polykit import total_degree

x, y = symbols("x y")


def test_univariate():
    assert total_degree(x**3 + x, x) == 3


def test_not_a_polynomial():
    raises(Exception, lambda: total_degree(1 / x, x))


@XFAIL
def test_negative_powers():
    assert total_degree(x**-1, x) == -1
"""

POLY_NEW_TESTS = """

def test_bivariate():
    assert total_degree(x**2 * y**3 + x, x, y) == 5


def test_generators_inferred():
    assert total_degree(x * y**2) == 3
"""

SYMPY_FILES = {
    "polykit/__init__.py": POLYKIT,
    "polykit/tests/__init__.py": "",
    "polykit/tests/test_degree.py": POLY_TESTS,
    "bin/test": BIN_TEST,
    "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
    '[project]\nname = "polykit"\nversion = "0.2"\n\n[tool.setuptools]\npackages = ["polykit"]\n',
}
SYMPY_FAIL_TO_PASS = ["test_bivariate", "test_generators_inferred"]  # fails, errors (IndexError) before the fix
SYMPY_PASS_TO_PASS = ["test_univariate", "test_not_a_polynomial"]

RECIPES = """\
defaults: {pip_uploaded_prior_to: "2024-10-15"}
"swe-env/shelfkit":
  "1.0":
    pip_packages: ["Django==4.2.16"]
    install: ["python -m pip install -e ."]
    test_command: "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1 {test_labels}"
"swe-env/polykit":
  "0.2":
    pip_packages: ["sympy==1.13.3"]
    install: ["python -m pip install -e ."]
    env: {PYTHONWARNINGS: "ignore::UserWarning,ignore::SyntaxWarning"}
    test_command: "bin/test -C --verbose {test_files}"
"""

SAMPLES = {
    "shelfkit": (
        DJANGO_FILES,
        "shelfkit/__init__.py",
        SHELFKIT_FIXED,
        "tests/shelf/tests.py",
        SHELF_NEW_TESTS,
        DJANGO_FAIL_TO_PASS,
        DJANGO_PASS_TO_PASS,
        "1.0",
        "parse_log_django",
        "shelf_mark('Ada Lovelace', 1843) gives 'ADA-1843'; isbn_digits fails on an X check digit.",
    ),
    "polykit": (
        SYMPY_FILES,
        "polykit/__init__.py",
        POLYKIT_FIXED,
        "polykit/tests/test_degree.py",
        POLY_NEW_TESTS,
        SYMPY_FAIL_TO_PASS,
        SYMPY_PASS_TO_PASS,
        "0.2",
        "parse_log_sympy",
        "total_degree(x**2*y**3 + x, x, y) gives 2, and total_degree(x*y**2) raises IndexError.",
    ),
}
EXECUTABLE = {"tests/runtests.py", "bin/test"}


def write_sample(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """The dataset file, the mirror folder (`swe-env__<name>`) and the recipes file of one sample, under `folder`."""
    files, source, fixed, test_file, new_tests, fail_to_pass, pass_to_pass, version, parser, problem = SAMPLES[name]
    mirror = folder / "mirror"
    repo = mirror / f"swe-env__{name}"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
        if path in EXECUTABLE:
            (repo / path).chmod(0o755)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", f"{name} {version}")
    base = _git(repo, "rev-parse", "HEAD").strip()
    (repo / source).write_text(fixed)
    (repo / test_file).write_text(files[test_file] + new_tests)
    gold = _git(repo, "diff", "--", source)
    test_patch = _git(repo, "diff", "--", test_file)
    _git(repo, "commit", "-qam", "the fix")  # in the history, after base_commit
    record = {
        "instance_id": f"swe-env__{name}-1",
        "repo": f"swe-env/{name}",
        "base_commit": base,
        "patch": gold,
        "test_patch": test_patch,
        "problem_statement": problem,
        "FAIL_TO_PASS": json.dumps(fail_to_pass),
        "PASS_TO_PASS": json.dumps(pass_to_pass),
        "version": version,
        "environment_setup_commit": base,
        "log_parser": parser,
    }
    dataset = folder / f"{name}.jsonl"
    dataset.write_text(json.dumps(record) + "\n")
    recipes = folder / "recipes.yaml"
    recipes.write_text(RECIPES)
    return dataset, mirror, recipes
