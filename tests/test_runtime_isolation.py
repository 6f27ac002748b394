"""The runtime and the CLI's score command work with TensorFlow, Keras, tf2onnx and onnx blocked."""

from __future__ import annotations

import json
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

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                ATTEMPTS.append(name)
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Blocker())

    def report(**extra):
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print(json.dumps({"attempts": ATTEMPTS, "loaded": loaded, **extra}))
''')

RUNTIME_SCRIPT = BLOCKER + textwrap.dedent('''
    import numpy as np
    import runtime

    detector = runtime.load(sys.argv[2])
    window = np.tile(np.asarray(detector.spec.mean, dtype=np.float32), (detector.spec.window, 1))
    scores = detector.score(window)
    report(scores=scores.tolist(), predict=detector.predict(window).tolist())
''')

CLI_SCRIPT = BLOCKER + textwrap.dedent('''
    from export.cli import main

    code = main(["score", sys.argv[2], sys.argv[3], "--jsonl", sys.argv[4]])
    report(code=code)
''')

TRAINING_SIDE = ("tensorflow", "keras", "tf2onnx", "onnx")


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
    # The runtime must not reach into the training or export packages either.
    blocked = (*TRAINING_SIDE, "training", "export")
    result = run_blocked(tmp_path, RUNTIME_SCRIPT, blocked, sensor_artifacts.int8)
    assert result["attempts"] == []
    assert result["loaded"] == []
    (score,) = result["scores"]
    assert score > 0
    assert result["predict"] in ([True], [False])


def test_cli_score_without_the_training_stack(sensor_artifacts, tmp_path):
    out = tmp_path / "scores.jsonl"
    result = run_blocked(tmp_path, CLI_SCRIPT, TRAINING_SIDE, sensor_artifacts.int8,
                         sensor_artifacts.test_csv, out)
    assert result["code"] == 0
    assert result["attempts"] == []
    assert result["loaded"] == []
    lines = out.read_text().splitlines()
    assert len(lines) == 1500 - 16 + 1
    assert {"index", "score", "anomaly"} <= set(json.loads(lines[0]))


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
