"""The runtime and the CLI's score command work with TensorFlow, Keras, tf2onnx and onnx blocked."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

TIMEOUT_S = 120  # guards against a hang only

# Installed before anything else is imported: any attempt to import a blocked package (or a
# submodule) is recorded and fails with ImportError. The script reports the attempts, and the
# blocked modules present in sys.modules, as the last line of stdout.
BLOCKER = textwrap.dedent('''
    import json, sys

    BLOCKED = set(sys.argv[1].split(","))
    ATTEMPTS = []

    def blocked(name):
        return any(name == b or name.startswith(b + ".") for b in BLOCKED)

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if blocked(name):
                ATTEMPTS.append(name)
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Blocker())

    def report(**extra):
        loaded = sorted(m for m in sys.modules if blocked(m))
        print(json.dumps({"attempts": ATTEMPTS, "loaded": loaded, **extra}))
''')

RUNTIME_SCRIPT = BLOCKER + textwrap.dedent('''
    import numpy as np
    from vigil import runtime

    detector = runtime.load(sys.argv[2])
    window = np.tile(np.asarray(detector.spec.mean, dtype=np.float32), (detector.spec.window, 1))
    scores = detector.score(window)
    report(scores=scores.tolist(), predict=detector.predict(window).tolist())
''')

CLI_SCRIPT = BLOCKER + textwrap.dedent('''
    from vigil.cli import main

    code = main(["score", sys.argv[2], sys.argv[3], "--jsonl", sys.argv[4]])
    report(code=code)
''')

BENCH_SCRIPT = BLOCKER + textwrap.dedent('''
    from vigil.cli import main

    code = main(["bench", sys.argv[2], "--batch", "1", "--seconds", "0.2", "--no-cold-start",
                 "--json", sys.argv[3]])
    report(code=code)
''')

TRAINING_SIDE = ("tensorflow", "keras", "tf2onnx", "onnx")
# What a runtime-only install (`pip install vigil-edge`) lacks: the training stack and our layers
# that need it.
RUNTIME_ONLY = (*TRAINING_SIDE, "vigil.training", "vigil.export")


def run_blocked(tmp_path, script: str, blocked, *args) -> dict:
    path = tmp_path / "blocked.py"
    path.write_text(script)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, str(path), ",".join(blocked), *map(str, args)],
                          capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_runtime_scores_without_the_training_stack(sensor_artifacts, tmp_path):
    # The runtime must not reach into the other layers of the package either.
    blocked = (*TRAINING_SIDE, "vigil.training", "vigil.export", "vigil.benchmarks", "vigil.cli")
    result = run_blocked(tmp_path, RUNTIME_SCRIPT, blocked, sensor_artifacts.int8)
    assert result["attempts"] == []
    assert result["loaded"] == []
    (score,) = result["scores"]
    assert math.isfinite(score)  # a standardized sum: a flat window at the mean may score below 0
    assert result["predict"] in ([True], [False])


def test_cli_score_without_the_training_stack(sensor_artifacts, tmp_path):
    out = tmp_path / "scores.jsonl"
    result = run_blocked(tmp_path, CLI_SCRIPT, RUNTIME_ONLY, sensor_artifacts.int8,
                         sensor_artifacts.test_csv, out)
    assert result["code"] == 0
    assert result["attempts"] == []
    assert result["loaded"] == []
    lines = out.read_text().splitlines()
    assert len(lines) == 1500 - 16 + 1
    assert {"index", "score", "anomaly"} <= set(json.loads(lines[0]))


def test_cli_bench_without_the_training_stack(sensor_artifacts, tmp_path):
    """`vigil bench` is part of the runtime-only install: it times without onnx, and says what it
    could not count."""
    out = tmp_path / "bench.json"
    result = run_blocked(tmp_path, BENCH_SCRIPT, RUNTIME_ONLY, sensor_artifacts.int8, out)
    assert result["code"] == 0
    assert result["loaded"] == []
    assert set(result["attempts"]) <= {"onnx"}, "only the optional operation count may try onnx"
    bench = json.loads(out.read_text())
    text = json.dumps(bench)
    assert "p50" in text and "operation counts need the onnx package" in text


def test_the_blocker_really_blocks(tmp_path):
    """Guard against a vacuous pass: the same blocker stops a direct import of onnx."""
    pytest.importorskip("onnx")
    script = BLOCKER + textwrap.dedent('''
        try:
            import onnx.helper
        except ImportError:
            pass
        report()
    ''')
    result = run_blocked(tmp_path, script, TRAINING_SIDE)
    assert result["attempts"] == ["onnx"]
    assert result["loaded"] == []


# Added in numpy 2.0 (mostly the array-API names); the runtime's bound is numpy>=1.24, so a device
# pinned to numpy 1.x must not meet them (np.trapezoid ended camera `vigil eval` there).
NUMPY_2_ONLY = ("trapezoid", "isdtype", "unique_values", "unique_counts", "unique_all",
                "unique_inverse", "vecdot", "matrix_transpose", "permute_dims", "concat",
                "astype", "cumulative_sum", "cumulative_prod", "matvec", "vecmat",
                "bitwise_left_shift",
                "bitwise_right_shift", "bitwise_invert", "acos", "asin", "atan", "atan2", "acosh",
                "asinh", "atanh", "pow")


def test_the_runtime_calls_nothing_numpy_1_lacks():
    import re
    from pathlib import Path

    import vigil.runtime

    pattern = re.compile(r"\bnp\.(" + "|".join(NUMPY_2_ONLY) + r")\(")
    calls = [f"{path.name}:{number}: {line.strip()}"
             for path in Path(vigil.runtime.__file__).parent.rglob("*.py")
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if pattern.search(line)]
    assert calls == [], "numpy 2-only calls in the runtime (give a numpy 1 fallback):\n" + \
        "\n".join(calls)


def test_onnxruntime_telemetry_is_off_unless_asked_for():
    """onnxruntime recorded every session in its telemetry database (device id, system,
    memory) from a device that never asked; ORT_DISABLE_TELEMETRY=0 opts in."""
    code = "import os, vigil.runtime; print(os.environ['ORT_DISABLE_TELEMETRY'])"
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    said = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert said.stdout.strip() == "1", said.stderr
    said = subprocess.run([sys.executable, "-c", code], env={**env, "ORT_DISABLE_TELEMETRY": "0"},
                          capture_output=True, text=True)
    assert said.stdout.strip() == "0", said.stderr


def test_a_broken_onnxruntime_is_one_line_naming_the_fix_and_version_still_answers(tmp_path):
    """onnxruntime 1.17 beside numpy 2 fails on import: every command said a traceback, even
    --version. Now --version answers without it, and the others name the dependency and the fix."""
    fake = tmp_path / "site" / "onnxruntime"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        'raise ImportError("numpy.core.multiarray failed to import")\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    run = lambda *args: subprocess.run([sys.executable, "-m", "vigil", *args], env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=120)
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("vigil ")
    score = run("score", "m.onnx", "rows.csv")
    assert score.returncode == 1 and "Traceback" not in score.stderr
    assert ("onnxruntime cannot be imported (numpy.core.multiarray failed to import)"
            in score.stderr and "onnxruntime>=1.18.1" in score.stderr)
    # an OpenCV wheel that needs libGL (opencv-python for the headless one): its own fix
    cv2 = tmp_path / "site" / "cv2"
    cv2.mkdir()
    (cv2 / "__init__.py").write_text('raise ImportError("libGL.so.1: cannot open shared object '
                                     'file")\n')
    (fake / "__init__.py").unlink()
    fake.rmdir()
    score = run("score", "m.onnx", "rows.csv")
    assert score.returncode == 1 and "Traceback" not in score.stderr
    assert "cv2 cannot be imported (libGL.so.1" in score.stderr
    assert "pip install --force-reinstall opencv-python-headless" in score.stderr


def test_the_library_leaves_the_hosts_opencv_limit_and_the_command_sets_its_own():
    """`vigil.load` of a camera model lowered OpenCV's decoder limit for the whole host process
    (a 72-megapixel line-scan frame read by the host's own code was refused). Only the `vigil`
    command's process sets it, to the frame sources' MAX_PIXELS."""
    from vigil.runtime.camera.image_header import MAX_PIXELS

    code = ("import os, vigil.runtime.camera, vigil.runtime; "
            "print(os.environ.get('OPENCV_IO_MAX_IMAGE_PIXELS'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    library = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=120)
    assert library.stdout.strip() == "None", library.stderr
    command = subprocess.run([sys.executable, "-c", "import os; from vigil.cli import main; "
                              "code = main(['score', 'missing.onnx', 'rows.csv']); "
                              "print(code, os.environ.get('OPENCV_IO_MAX_IMAGE_PIXELS'))"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert command.stdout.split() == ["3", str(MAX_PIXELS)], command.stderr


def test_the_training_package_on_a_runtime_only_install_names_the_extra_to_install():
    """`from vigil.training import train_sensor` there said "No module named 'keras'": keras
    alone would not help. It names the extra now."""
    code = ("import importlib.util as u\n"
            "find = u.find_spec\n"
            "u.find_spec = lambda name, *a: None if name == 'keras' else find(name, *a)\n"
            "try:\n"
            "    from vigil.training import train_sensor\n"
            "except ImportError as error:\n"
            "    print(error)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert ("vigil.training needs the training extras (keras is not installed; a device needs "
            "only vigil.runtime): pip install 'vigil-edge[train]'") in done.stdout, done.stderr
