"""Every package (runtime/, the device's, and training/, export/, benchmarks/ and the CLI in
vigil/) type-checks with mypy, as pyproject.toml's [tool.mypy] configures it: a change that
passes None where a value is needed, or mixes up the sensor and image specs, fails here rather
than on a device or in a user's training run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import require

ROOT = Path(__file__).resolve().parents[1]
MYPY_TIMEOUT_S = 600  # a cold cache takes seconds: this only stops a hung run


def test_every_package_type_checks(request, tmp_path):
    require("mypy")  # the dev extra's: skipped where absent, failed in CI
    # one package's calls into another (vigil.runtime from vigil.cli) are checked against the
    # vigil that is installed: it must be this checkout's, or a stale install passes (review d1)
    found = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; "
                               "print(u.find_spec('vigil.runtime.loader').origin)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    origin = Path(found.stdout.strip()) if found.returncode == 0 else None
    ours = ROOT / "runtime" / "loader.py"
    # the same file by its link (setuptools' strict mode links each one) or a hard link
    assert origin is not None and origin.exists() and os.path.samefile(origin, ours), (
        f"vigil is imported from {origin or found.stderr.strip()[-300:]}, not this checkout "
        f"({ROOT}): mypy would check the packages' calls against that copy; reinstall this "
        f"checkout: pip install -e '.[train,dev]' --config-settings editable_mode=strict")
    # mypy's cache beside pytest's own (.pytest_cache, ignored by git), so that a run after the
    # first checks only what changed; a fresh one where pytest keeps no cache
    pytest_cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    cache = pytest_cache.mkdir("mypy") if pytest_cache is not None else tmp_path / "mypy-cache"
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(cache)],  # the files [tool.mypy] names
        cwd=ROOT, capture_output=True, text=True, timeout=MYPY_TIMEOUT_S)
    assert done.returncode == 0, (
        f"mypy found type errors (run it: python -m mypy):\n"
        f"{done.stdout}{done.stderr}")


def test_a_users_code_type_checks_strictly_against_the_public_names(request, tmp_path):
    """A user's own code, checked with `mypy --strict` (no implicit re-exports), reads the top
    level's names: `vigil.load` and the rest are lazy, and were not exported to a checker
    (review u2: 'Module "vigil" does not explicitly export attribute "load"')."""
    require("mypy")
    (tmp_path / "app.py").write_text(
        "import numpy as np\n"
        "import vigil\n"
        "from vigil import ArtifactError, ImageDetector, Result, SensorDetector, StreamingScorer\n"
        "\n"
        "\n"
        "def run(path: str) -> list[Result]:\n"
        "    detector = vigil.load(path)\n"
        "    stream = vigil.StreamingScorer(detector)\n"
        "    return [result for row in np.zeros((4, 3)) for result in stream.push(row)]\n"
        "\n"
        "\n"
        "def boxes(path: str) -> list[dict[str, object]]:\n"
        "    camera = vigil.load(path)\n"
        "    if not isinstance(camera, ImageDetector):\n"
        "        raise ArtifactError(f'{path} holds no camera model')\n"
        "    return camera.locate(np.zeros((8, 8, 3), np.uint8))[1]\n"
        "\n"
        "\n"
        "KINDS = (SensorDetector, StreamingScorer)\n")
    pytest_cache = getattr(request.config, "cache", None)
    cache = pytest_cache.mkdir("mypy-user") if pytest_cache is not None else tmp_path / "cache"
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache),
                           "app.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=MYPY_TIMEOUT_S)
    assert done.returncode == 0, f"{done.stdout}{done.stderr}"
