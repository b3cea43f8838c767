"""What the installed test runner reads, asked in the task's own image (scripts and their parsing; no I/O).

Fixed lists of config files and module names fall behind the runner: pytest 9 reads `pytest.toml`
and `.pytest.toml`; `copy` tries `import org.python.core` at start-up (Jython's), so an `org/`
package added at the repository root runs inside pytest before any test, and a project's optional
dependency that is not installed is the same kind of door. So the grader asks, once per instance
image (`Grader.runner_facts`, cached on the host: `facts`), in a fresh container from that image and before
any patch:

- `CONFIG_PROBE`: which of `CONFIG_CANDIDATES` the installed pytest picks as its config file
  (each laid alone in an empty folder, pytest asked for its header); those it reads only are
  restored whole, those shared with other tools only when their pytest section changed;
- `IMPORTABLE_PROBE`: every top-level module the task's interpreter imports from outside the
  repository (a new top-level module of that name in the repository would shadow it);
- `RUNNER_PROBE`: where the runner's own packages (`RUNNER_MODULES`) are imported from, asked from the
  workdir as the test command imports them; those inside the repository are the runner's own files, and a
  patch touching them changes the runner (`Runner.runner_is_repo`: never decided from folder names);
- `IMPORTS_SITE`, a `sitecustomize` put first on PYTHONPATH for one clean run of the task's test
  command: an audit hook (PEP 578) records every top-level name an import was attempted for that
  never loaded (tried and failed: a module of that name added to the repository would load).

`RunnerFacts` holds the answers; `protection.paths_to_restore` takes them as the importable names
and extra globs.
"""

from __future__ import annotations

import itertools
import json
import shlex
from dataclasses import dataclass, field

CONFIG_CANDIDATES: dict[str, str] = {
    "pytest.ini": "[pytest]\nxfail_strict = true\n",
    ".pytest.ini": "[pytest]\nxfail_strict = true\n",
    "pytest.toml": "[pytest]\nxfail_strict = true\n",
    ".pytest.toml": "[pytest]\nxfail_strict = true\n",
    "pyproject.toml": "[tool.pytest.ini_options]\nxfail_strict = true\n",
    "tox.ini": "[pytest]\nxfail_strict = true\n",
    "setup.cfg": "[tool:pytest]\nxfail_strict = true\n",
}
"""Config file names some pytest release reads, each with a pytest section in the form it reads there."""
SHARED_CONFIG = frozenset({"pyproject.toml", "tox.ini", "setup.cfg"})
"""Files other tools read too: restored only when their pytest section changed (`tests.protected_config`)."""

CONFIG_PROBE = r"""
import json, os, re, subprocess, sys, tempfile
candidates = json.loads(sys.argv[1])
read = []
for name, text in candidates.items():
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, name), "w") as handle:
            handle.write(text)
        done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-p", "no:cacheprovider", folder],
                              cwd=folder, capture_output=True, text=True, timeout=120)
        if re.search(r"^(?:configfile|inifile): " + re.escape(name) + r"\s*$", done.stdout, re.M):
            read.append(name)
print(json.dumps(read))
"""
"""Run by the task's python with `-I` from `/`; argv[1]: CONFIG_CANDIDATES as JSON. Prints the names pytest read."""

IMPORTABLE_PROBE = r"""
import os, pkgutil, sys
repo = os.path.realpath(sys.argv[1])
names = set(sys.builtin_module_names) | set(getattr(sys, "stdlib_module_names", ()))
for entry in sys.path:
    where = os.path.realpath(entry or ".")
    if where == repo or where.startswith(repo + os.sep) or not os.path.isdir(where):
        continue
    names.update(module.name for module in pkgutil.iter_modules([where]))
    for item in os.listdir(where):  # namespace packages (no __init__.py) too
        if item.isidentifier() and item != "__pycache__" and os.path.isdir(os.path.join(where, item)):
            names.add(item)
sys.stdout.write("\n".join(sorted(n for n in names if n.isidentifier())))
"""
"""Run by the task's python with `-I` from `/` (argv[1]: the repository): every top-level module name it can
import from outside the repository. `python -m pytest` puts the repository first on sys.path, so a new
top-level module named like any of them is loaded instead of the real one."""

RUNNER_MODULES = ("pytest", "_pytest", "pluggy")
"""The pytest runner's own packages: a patch changing their files changes the runner itself."""

RUNNER_PROBE = r"""
import importlib.util, json, os, sys
root = os.path.realpath(".")
inside = []
for name in sys.argv[1:]:
    try:
        spec = importlib.util.find_spec(name)
    except Exception:
        continue
    places = list(spec.submodule_search_locations or []) if spec else []
    if spec and not places and spec.origin and os.path.isabs(spec.origin):
        places = [spec.origin]
    for place in places:
        place = os.path.realpath(place)
        if place.startswith(root + os.sep):
            inside.append(place[len(root) + 1:])
print(json.dumps(inside))
"""
"""Run by the task's python from the workdir (not `-I`: the test command's `sys.path`, cwd and the image's
PYTHONPATH included); argv[1:]: RUNNER_MODULES. Prints, as a JSON list, the repository paths (folders of packages,
files of modules) those modules are imported from that lie inside the repository (pytest's own tasks)."""

IMPORTS_SITE = r"""
import atexit
import os
import sys

_out = os.environ.pop("SWE_ENV_PROBE_OUT", "")
_tried = set()


def _hook(event, args):
    if event == "import":
        _tried.add(str(args[0]).partition(".")[0])


def _write():
    if _out:
        with open(_out, "w") as handle:
            handle.write("\n".join(sorted(name for name in _tried if name and name not in sys.modules)))


sys.addaudithook(_hook)
atexit.register(_write)
# The image's own sitecustomize, if it has one, still runs: this one only stands in front of it.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
del sys.modules["sitecustomize"]
try:
    import sitecustomize  # noqa: F401
except ImportError:
    pass
sys.path.insert(0, _here)
"""
"""The `sitecustomize` of the probe's clean run (`SWE_ENV_PROBE_OUT`: where it writes, at exit, every top-level
name an import was attempted for that is not loaded then)."""

MAX_NAMES = 200_000
"""Names kept from one probe's answer (a large conda environment has a few thousand)."""


@dataclass(frozen=True)
class RunnerFacts:
    """What the installed runner reads, as the probe found it in the task's image."""

    config_names: frozenset[str] = frozenset()
    """Config file names the installed pytest picks (of CONFIG_CANDIDATES); empty when it could not be asked."""
    importable: frozenset[str] = frozenset()
    """Top-level modules the interpreter imports from outside the repository."""
    failed_imports: frozenset[str] = frozenset()
    """Top-level names a clean run of the test command tried to import and did not load."""
    runner_code: frozenset[str] | None = None
    """Repository paths (folders or files) the runner's own packages are imported from (`RUNNER_PROBE`): empty when
    they come from outside the repository, None when not asked (then the patch is never taken for the runner's)."""
    notes: tuple[str, ...] = field(default=())
    """What could not be asked (each a short reason), for the grader's log."""

    @property
    def shadowable(self) -> frozenset[str]:
        """Names a new top-level module of the repository must not take."""
        return self.importable | self.failed_imports

    def protected(self) -> list[str]:
        """Globs restored whole when changed: the config files only pytest reads, wherever they are."""
        return [f"**/{name}" for name in sorted(self.config_names - SHARED_CONFIG)]

    def protected_config(self) -> list[str]:
        """Globs restored when their pytest section changed: the shared config files pytest reads."""
        return [f"**/{name}" for name in sorted(self.config_names & SHARED_CONFIG)]

    def changes_runner(self, patched: list[str]) -> bool:
        """Whether one of the repository paths `patched` is a file of the runner's own packages (`runner_code`)."""
        own = self.runner_code or frozenset()
        return any(path == place or path.startswith(place + "/") for path in patched for place in own)

    def to_json(self) -> str:
        return json.dumps(
            {
                "config_names": sorted(self.config_names),
                "importable": sorted(self.importable),
                "failed_imports": sorted(self.failed_imports),
                "runner_code": None if self.runner_code is None else sorted(self.runner_code),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> RunnerFacts:
        data = json.loads(text)
        return cls(
            config_names=frozenset(data["config_names"]) & set(CONFIG_CANDIDATES),
            importable=module_names("\n".join(data["importable"])),
            failed_imports=module_names("\n".join(data["failed_imports"])),
            runner_code=None if data.get("runner_code") is None else runner_paths(json.dumps(data["runner_code"])),
        )


def runner_paths(output: str) -> frozenset[str] | None:
    """The repository paths RUNNER_PROBE printed (its last line, a JSON list); None when it cannot be read."""
    lines = output.strip().splitlines()
    try:
        found = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    if not isinstance(found, list):
        return None
    return frozenset(path for path in found[:1000] if isinstance(path, str) and path and not path.startswith("/") and ".." not in path.split("/"))


def module_names(output: str) -> frozenset[str]:
    """The identifiers among the lines a probe printed, at most MAX_NAMES."""
    names = (line.strip() for line in output.splitlines())
    return frozenset(itertools.islice((n for n in names if n.isidentifier()), MAX_NAMES))


def config_names(output: str) -> frozenset[str]:
    """The config names CONFIG_PROBE printed (its last line, a JSON list), limited to CONFIG_CANDIDATES."""
    lines = output.strip().splitlines()
    try:
        found = json.loads(lines[-1]) if lines else []
    except ValueError:
        return frozenset()
    return frozenset(name for name in found if isinstance(name, str) and name in CONFIG_CANDIDATES)


def named_in_command(command: str, workdir: str) -> tuple[list[str], frozenset[str]]:
    """What the task's command itself tells pytest to read: config files (`-c FILE`, `--config-file FILE`,
    as repository paths; restored whole) and plugin modules (`-p NAME`, not `-p no:NAME`; their top-level
    names are protected like the probe's). A word that is not one of these is ignored."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    files: list[str] = []
    plugins: set[str] = set()
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        if word in ("-c", "--config-file"):
            files.append(following)
        elif word.startswith("--config-file="):
            files.append(word.partition("=")[2])
        elif word == "-p" or (word.startswith("-p") and not word.startswith("--") and len(word) > 2):
            name = following if word == "-p" else word[2:]
            if name and not name.startswith("no:"):
                plugins.add(name.partition(".")[0])
    root = workdir.rstrip("/") + "/"
    paths = []
    for path in files:
        path = path[len(root) :] if path.startswith(root) else path
        if path and not path.startswith("/") and ".." not in path.split("/"):
            paths.append(path.removeprefix("./"))
    return paths, frozenset(name for name in plugins if name.isidentifier())
