"""CPU time of a pytest run sealed by the pure-Python hook and by the native one (issue 23).

Runs a synthetic suite (5 modules of 400 small tests) under this interpreter with the grader's
start-up module, plugin and key, as the grader does in its container, once without the native
seal's shared object and once with it, `--pairs` times alternately, and prints the pytest
process's user+system CPU seconds (CPU time, not wall time: the machine is shared).

    .venv/bin/python bench/seal_overhead.py --pairs 5
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from swe_env.grading import native, seal

REPORTER = Path(native.__file__).with_name("reporter")
MODULE = "import json, re\n" + "".join(
    f"def test_{i}():\n    assert json.loads(json.dumps({{'a': {i}}}))['a'] == {i} and re.match('a', 'a')\n" for i in range(400)
)


def run(work: Path, shared_object: bytes | None) -> tuple[float, str | None]:
    recorder = work / ("native" if shared_object else "python")
    shutil.rmtree(recorder, ignore_errors=True)
    recorder.mkdir()
    for name in ("sitecustomize.py", "swe_env_seal.py"):
        shutil.copy(REPORTER / name, recorder / name)
    if shared_object:
        (recorder / native.FILE_NAME).write_bytes(shared_object)
    key = secrets.token_bytes(seal.KEY_BYTES)
    (work / "run.key").write_bytes(seal.key_file(key, [str(work / "proj" / "test_m0.py")], False))
    results = work / "results"
    results.write_bytes(b"")
    env = {
        **os.environ,
        "PYTHONPATH": str(recorder),
        "SWE_ENV_RESULTS": str(results),
        "SWE_ENV_RUNNER": "pytest",
        "SWE_ENV_KEY": str(work / "run.key"),
        "PYTEST_ADDOPTS": "-p swe_env_seal -p no:cacheprovider",
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "proj"], cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sealed = seal.read(results.read_bytes(), key, "pytest")
    assert sealed.error is None, sealed.error
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, sealed.seal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    pairs = parser.parse_args().pairs
    built = native.build()
    if built.data is None:
        sys.exit(f"no native seal: {built.reason}")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "proj").mkdir()
        for n in range(5):
            (work / "proj" / f"test_m{n}.py").write_text(MODULE)
        seconds: dict[str, list[float]] = {"python": [], "native": []}
        for _ in range(pairs):
            for data in (None, built.data):
                spent, which = run(work, data)
                seconds[str(which)].append(spent)
        for which, values in seconds.items():
            print(
                f"{which}: median {statistics.median(values):.2f} s CPU "
                f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} runs of 2000 tests)"
            )
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
