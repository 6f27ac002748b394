"""Running as a service: the systemd units pass `systemd-analyze verify`, their command line
works as written (and a restart continues the results), `vigil health-check` tells a live run
from a stale or stopped one, and the container recipe installs the runtime alone as non-root."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vigil.cli import commands as cli
from vigil.runtime.core.health import HealthReporter

DEPLOY = Path(__file__).resolve().parents[1] / "runtime" / "deploy"
VIGIL = Path(sys.executable).with_name("vigil")


def _units(tmp_path: Path) -> Path:
    """The units, with the vigil this test suite runs instead of /usr/local/bin/vigil."""
    folder = tmp_path / "units"
    folder.mkdir()
    for unit in DEPLOY.glob("vigil-*"):
        (folder / unit.name).write_text(unit.read_text().replace("/usr/local/bin/vigil",
                                                                 str(VIGIL)))
    return folder


def test_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    folder = _units(tmp_path)
    units = ["vigil-score@line1.service", "vigil-watchdog@line1.service",
             "vigil-watchdog@line1.timer"]
    done = subprocess.run([analyze, "verify", "--man=no", *[f"./{u}" for u in units]],
                          cwd=folder, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    security = subprocess.run([analyze, "security", "--offline=true",
                               "./vigil-score@line1.service"], cwd=folder, capture_output=True,
                              text=True, timeout=120, check=False)
    exposure = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert exposure and float(exposure.group(1)) <= 2.0, security.stdout[-2000:]


def _exec_start(unit: str) -> str:
    text = unit.replace("\\\n", " ")
    return next(line.split("=", 1)[1] for line in text.splitlines()
                if line.startswith("ExecStart="))


def test_the_service_command_runs_as_written_and_a_restart_continues_the_results(
        sensor_artifacts, tmp_path):
    state, runtime_dir = tmp_path / "state", tmp_path / "run"
    state.mkdir(), runtime_dir.mkdir()
    environment = {"VIGIL_MODEL": str(sensor_artifacts.fp32),
                   "VIGIL_SOURCE": str(sensor_artifacts.test_csv),
                   "STATE_DIRECTORY": str(state), "RUNTIME_DIRECTORY": str(runtime_dir),
                   "VIGIL_ARGS": "--threads 1"}
    command = _exec_start((DEPLOY / "vigil-score@.service").read_text())
    command = re.sub(r"\$\{(\w+)\}", lambda m: environment[m.group(1)], command)
    words = [environment[w[1:]] if w.startswith("$") else w for w in command.split()]
    words = [w for part in words for w in part.split()]  # $VIGIL_ARGS splits into words
    words[0] = str(VIGIL)
    for run in (1, 2):  # systemd's Restart= (after a failure) runs the same line again
        done = subprocess.run(words, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        lines = (state / "results.jsonl").read_text().splitlines()
        health = json.loads((runtime_dir / "health.json").read_text())
        assert health["status"] == "stopped" and health["stopped"] == "end"
        assert len(lines) == run * health["windows"]


@pytest.mark.parametrize("active, healthy, restarted", [
    (True, True, False),    # a live run: left alone
    (True, False, True),    # running, but its health file is stale or says it stopped: hung
    (False, False, False),  # ended (a finite source read to its end): done, not re-scored
])
def test_the_watchdog_restarts_a_hung_scorer_and_leaves_an_ended_one(tmp_path, active, healthy,
                                                                    restarted):
    """The watchdog's command, run by sh as systemd runs it, with systemctl and vigil stubbed."""
    unit = (DEPLOY / "vigil-watchdog@.service").read_text()
    assert "Restart=on-failure" in (DEPLOY / "vigil-score@.service").read_text()
    script = _exec_start(unit).split("/bin/sh -c ", 1)[1].strip("'")
    calls = tmp_path / "calls"
    stubs = {"systemctl": f'echo "systemctl $*" >> {calls}; '
                          f'[ "$1" != is-active ] || exit {0 if active else 3}',
             "vigil": f'echo "vigil $*" >> {calls}; exit {0 if healthy else 1}'}
    for name, body in stubs.items():
        stub = tmp_path / name
        stub.write_text(f"#!/bin/sh\n{body}\n")
        stub.chmod(0o755)
    script = (script.replace("/bin/systemctl", str(tmp_path / "systemctl"))
              .replace("/usr/local/bin/vigil", str(tmp_path / "vigil")).replace("%i", "line1"))
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    assert lines[0] == "systemctl is-active --quiet vigil-score@line1.service"
    assert ("systemctl restart vigil-score@line1.service" in lines) == restarted
    assert any(line.startswith("vigil health-check") for line in lines) == active


def _health_file(tmp_path: Path, status: str) -> Path:
    path = tmp_path / f"{status}.json"
    reporter = HealthReporter(path, interval_s=3600)
    reporter.start("sensor", "x.csv", lambda: {"rows": 1}, "rows")
    if status == "stopped":
        reporter.stop("end")
    return path


def test_health_check_tells_a_live_run_from_a_stale_stopped_or_missing_one(tmp_path, capsys):
    from sensor_fixtures import write_tiny_sensor_artifact

    tiny_model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    (tmp_path / "x.csv").write_text("timestamp,a,b,c\n" + "".join(
        f"{i},0.1,0.2,0.3\n" for i in range(20)))
    assert cli.main(["health-check", str(_health_file(tmp_path, "running"))]) == 0
    assert capsys.readouterr().out.startswith("healthy: ")

    stale = _health_file(tmp_path, "running")
    old = json.loads(stale.read_text())
    old["updated"] = "2020-01-01T00:00:00.000Z"
    stale.write_text(json.dumps(old))
    assert cli.main(["health-check", str(stale), "--max-age", "60"]) == 1
    assert "was last rewritten" in capsys.readouterr().err
    old["updated"] = "2099-01-01T00:00:00.000Z"  # written before the clock was set back
    stale.write_text(json.dumps(old))
    assert cli.main(["health-check", str(stale), "--max-age", "60"]) == 1
    assert "in the future" in capsys.readouterr().err
    old["updated"] = "2020-01-01T00:00:00"  # no zone: read as UTC, not a Python error (exit 2)
    stale.write_text(json.dumps(old))
    assert cli.main(["health-check", str(stale), "--max-age", "60"]) == 1
    assert "was last rewritten" in capsys.readouterr().err

    # a run at its source's end may still be closing its outputs (an MQTT broker acknowledging
    # the last lines): not restarted, which would score a finished source again
    assert cli.main(["health-check", str(_health_file(tmp_path, "stopped"))]) == 0
    assert "finished: " in capsys.readouterr().out
    # however long ago: a finished job's final report is not rewritten, and a cron check an
    # hour later is no fault (a review: exit 1, "last rewritten 336 s ago")
    done = _health_file(tmp_path, "stopped")
    final = json.loads(done.read_text())
    final["updated"] = "2020-01-01T00:00:00.000Z"
    done.write_text(json.dumps(final))
    assert cli.main(["health-check", str(done), "--max-age", "60"]) == 0
    assert "finished: " in capsys.readouterr().out
    # ... until a restart that is refused before it begins (a model refused, a source gone):
    # its failure replaces the finished report, which would hide it however old (a review)
    final["pid"], final["process"] = 1, None  # an earlier process's (this one wrote it here)
    for refused in (["--expect-sha256", "0" * 64], []):
        done.write_text(json.dumps(final))
        source = str(tmp_path / "gone.csv") if not refused else str(tmp_path / "x.csv")
        assert cli.main(["score", str(tiny_model), source, "--health", str(done),
                         *refused]) in (cli.EXIT_INPUT, cli.EXIT_ARTIFACT)
        capsys.readouterr()
        assert cli.main(["health-check", str(done), "--max-age", "60"]) == cli.EXIT_FAILURE
        assert "the run was refused before it began" in capsys.readouterr().err
    # ... never a scorer's that is running there (a command line copied with a typo)
    live = _health_file(tmp_path, "running")
    before = live.read_text()
    assert cli.main(["score", str(tmp_path / "typo.onnx"), str(tmp_path / "x.csv"),
                     "--health", str(live)]) == cli.EXIT_ARTIFACT
    capsys.readouterr()
    assert live.read_text() == before
    failed = tmp_path / "failed.json"
    reporter = HealthReporter(failed, interval_s=3600)
    reporter.start("sensor", "x.csv", lambda: {"rows": 1}, "rows")
    reporter.stop("error", "the model file is unreadable")
    assert cli.main(["health-check", str(failed)]) == 1
    assert "the run is 'stopped' (stopped: 'error'" in capsys.readouterr().err
    assert cli.main(["health-check", str(tmp_path / "none.json")]) == 1
    assert "no health file at" in capsys.readouterr().err
    idle = _health_file(tmp_path, "running")
    assert cli.main(["health-check", str(idle), "--max-idle", "600"]) == 0
    capsys.readouterr()
    report = json.loads(idle.read_text())
    report["idle_s"] = 900.0
    idle.write_text(json.dumps(report))
    assert cli.main(["health-check", str(idle), "--max-idle", "600"]) == 1
    assert "no input for 900 s" in capsys.readouterr().err
    from datetime import datetime, timedelta, timezone  # idle 5 s when written 20 s ago: 25 s
    report["idle_s"] = 5.0
    report["updated"] = (datetime.now(timezone.utc) - timedelta(seconds=20)).isoformat()
    idle.write_text(json.dumps(report))
    assert cli.main(["health-check", str(idle), "--max-idle", "15", "--max-age", "60"]) == 1
    assert "no input for 25 s" in capsys.readouterr().err


def _as_running(health: Path, tmp_path: Path, **counts) -> None:
    """Rewrite a finished run's health report as a live one's, just written, with ``counts``."""
    report = json.loads(health.read_text())
    report.update(status="running", **counts,
                  updated=json.loads(_health_file(tmp_path, "running").read_text())["updated"])
    report.pop("process", None)
    health.write_text(json.dumps(report))


def test_a_camera_run_that_scores_no_frame_is_warned_and_health_check_can_tell(tmp_path,
                                                                               capsys):
    """A camera whose every frame arrives damaged inspects nothing: its first five skipped
    frames were named, then nothing, and `--max-unscored` looked at sensor rows only (r2)."""
    import cv2
    import numpy as np
    from image_fixtures import normal_frame, write_tiny_image_artifact

    from vigil.runtime.camera.scoring import UNSCORED_FRAMES_WARNING

    model = write_tiny_image_artifact(tmp_path / "tiny.onnx")
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "0000.png"), normal_frame(rng))
    for n in range(1, UNSCORED_FRAMES_WARNING + 6):
        (folder / f"{n:04d}.png").write_bytes(b"\x89PNG\r\n\x1a\n cut off in transit")
    cv2.imwrite(str(folder / "9999.png"), normal_frame(rng))
    health = tmp_path / "health.json"
    assert cli.main(["score", str(model), str(folder), "--jsonl", str(tmp_path / "o.jsonl"),
                     "--health", str(health)]) == 0
    err = capsys.readouterr().err.splitlines()
    warned = [line for line in err if "no frame scored" in line]
    assert len(warned) == 1 and f"for the last {UNSCORED_FRAMES_WARNING} frames" in warned[0]
    assert any(f"scored again from frame {UNSCORED_FRAMES_WARNING + 6}, after "
               f"{UNSCORED_FRAMES_WARNING + 5} unscored" in line for line in err)
    assert json.loads(health.read_text())["frames_unscored"] == 0  # scoring again at the end
    _as_running(health, tmp_path, frames_unscored=UNSCORED_FRAMES_WARNING + 5)
    capsys.readouterr()
    assert cli.main(["health-check", str(health)]) == 0
    assert cli.main(["health-check", str(health), "--max-unscored", "50"]) == 1
    assert (f"no frame scored for the last {UNSCORED_FRAMES_WARNING + 5} frames (at least 50)"
            in capsys.readouterr().err)


def test_a_sensor_run_that_skips_every_row_is_warned_and_health_check_can_tell(tmp_path,
                                                                               capsys):
    """A dead column: every row skipped, nothing detected, yet the scorer is alive and fed."""
    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.runtime.sensor.stream_watch import UNSCORED_ROWS_WARNING

    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    rows = [f"{i},0.1,{'' if i >= 20 else 0.2},0.3" for i in range(20 + UNSCORED_ROWS_WARNING + 5)]
    rows += [f"{i},0.1,0.2,0.3" for i in range(len(rows), len(rows) + 6)]  # it comes back
    data = tmp_path / "dead.csv"
    data.write_text("timestamp,a,b,c\n" + "\n".join(rows) + "\n")
    health = tmp_path / "health.json"
    assert cli.main(["score", str(model), str(data), "--jsonl", str(tmp_path / "o.jsonl"),
                     "--health", str(health)]) == 0
    err = capsys.readouterr().err.splitlines()
    warned = [line for line in err if "no window scored" in line]
    assert len(warned) == 1 and f"for {UNSCORED_ROWS_WARNING} rows, since row 22" in (
        warned[0]) and "missing or NaN value in ['b']" in warned[0]
    assert any("windows are scored again from row" in line for line in err)
    assert json.loads(health.read_text())["rows_unscored"] == 0  # scoring again at the end
    _as_running(health, tmp_path, rows_unscored=UNSCORED_ROWS_WARNING + 5)
    capsys.readouterr()
    assert cli.main(["health-check", str(health)]) == 0
    assert cli.main(["health-check", str(health), "--max-unscored", "500"]) == 1
    assert "no window scored for the last 1005 rows (at least 500)" in capsys.readouterr().err
    assert cli.main(["health-check", str(health), "--max-unscored", "1005"]) == 1  # this many
    capsys.readouterr()
    # one good row, then three missing cells (two filled, the third restarts the 4-row window):
    # no run of skipped rows is long, yet no window ever completes: counted all the same
    rows = [f"{i},0.1,{'' if i % 4 else 0.2},0.3" for i in range(1500)]
    data.write_text("timestamp,a,b,c\n" + "\n".join(rows) + "\n")
    assert cli.main(["score", str(model), str(data), "--jsonl", str(tmp_path / "o.jsonl"),
                     "--overwrite", "--health", str(health)]) == 0
    assert any("no window scored" in line for line in capsys.readouterr().err.splitlines())
    assert json.loads(health.read_text())["rows_unscored"] >= 1000


@pytest.mark.skipif(not Path("/proc/self/ns/pid").exists(), reason="needs Linux's /proc")
def test_health_check_tells_a_killed_scorer_at_once_though_its_file_is_fresh(tmp_path, capsys):
    path = tmp_path / "health.json"
    scorer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from vigil.runtime.core.health import HealthReporter\n"
        f"r = HealthReporter({str(path)!r}, interval_s=3600)\n"
        "r.start('sensor', 'x.csv', lambda: {'rows': 1}, 'rows')\n"
        "print('written', flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert scorer.stdout.readline().strip() == "written"
        assert cli.main(["health-check", str(path)]) == 0
        capsys.readouterr()
    finally:
        scorer.kill()  # as the kernel's out-of-memory killer would: no final report
        scorer.wait()
    report = json.loads(path.read_text())
    assert report["status"] == "running" and report["pid"] == scorer.pid
    assert cli.main(["health-check", str(path), "--max-age", "3600"]) == 1
    assert f"the scorer (pid {scorer.pid}) is no longer running" in capsys.readouterr().err
    # a check from another boot or process-ID namespace cannot tell: the file's age decides
    report["process"]["pid_namespace"] = "pid:[1]"
    path.write_text(json.dumps(report))
    assert cli.main(["health-check", str(path), "--max-age", "3600"]) == 0
    # the process ID reused by another process (a later start) is no scorer either
    live = json.loads(_health_file(tmp_path, "running").read_text())
    live["process"]["start_ticks"] -= 1
    path.write_text(json.dumps(live))
    assert cli.main(["health-check", str(path)]) == 1
    assert "is no longer running" in capsys.readouterr().err


def test_container_recipe_installs_the_runtime_alone_as_a_non_root_user():
    recipe = (DEPLOY / "Containerfile").read_text()
    root = DEPLOY.parents[1]
    for source in re.findall(r"^COPY (.+) \S+$", recipe, re.MULTILINE):
        for name in source.split():
            assert (root / name).exists(), f"COPY {name}: not in the project"
    install = re.search(r"pip install [^\n&]*", recipe).group(0)
    assert "[" not in install, "the runtime image installs no extras (no TensorFlow)"
    assert re.search(r"^USER vigil$", recipe, re.MULTILINE)
    health = re.search(r'CMD \["vigil", "health-check", "([^"]+)"', recipe).group(1)
    assert f'"--health", "{health}"' in recipe  # the health check reads what the scorer writes


def test_a_non_finite_count_keeps_the_health_file_strict_json(tmp_path, capsys):
    """Plain json.dumps wrote Infinity/NaN, which strict parsers (a watchdog, a dashboard, the
    health check itself in other languages) refuse."""
    path = tmp_path / "health.json"
    reporter = HealthReporter(path, interval_s=3600)
    reporter.start("sensor", "x.csv", lambda: {"rows": 1, "rate": float("inf"),
                                               "score": float("nan")}, "rows")
    reporter.stop("end")
    report = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(name))
    assert report["rate"] > 1e300 and report["score"] is None
    assert cli.main(["health-check", str(path)]) == 0
    assert "(stopped: end; not to be restarted)" in capsys.readouterr().out


def test_a_second_scorer_given_one_health_file_is_refused(tmp_path, capsys):
    """Two instances given one --health by a configuration mistake wrote over each other's
    reports, and after one was killed the watchdog read the other's and called it healthy
    (review r5); --jsonl and --state were already locked against the same mistake."""
    from sensor_fixtures import write_tiny_sensor_artifact

    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    (tmp_path / "x.csv").write_text("timestamp,a,b,c\n" + "".join(
        f"{i},0.1,0.2,0.3\n" for i in range(20)))
    path = tmp_path / "shared.json"
    running = HealthReporter(path, interval_s=3600, exclusive=True)
    running.start("sensor", "a.csv", lambda: {"rows": 1}, "rows")
    before = path.read_text()
    with pytest.raises(ValueError, match=r"is written by another run .*shared\.json\.lock"):
        HealthReporter(path, interval_s=3600, exclusive=True)
    alias = tmp_path / "alias.json"  # another name of the same file (review d1)
    alias.symlink_to(path)
    with pytest.raises(ValueError, match=r"is written by another run"):
        HealthReporter(alias, interval_s=3600, exclusive=True)
    assert cli.main(["score", str(model), str(tmp_path / "x.csv"), "--health", str(path),
                     "--jsonl", str(tmp_path / "b.jsonl")]) == cli.EXIT_INPUT
    assert "give each its own --health file" in capsys.readouterr().err
    assert path.read_text() == before and not (tmp_path / "b.jsonl").exists()
    running.stop("end")  # the file is free once its run has stopped
    assert cli.main(["score", str(model), str(tmp_path / "x.csv"), "--health", str(path),
                     "--jsonl", str(tmp_path / "b.jsonl")]) == 0
    assert json.loads(path.read_text())["stopped"] == "end"


def test_a_health_file_mirrored_to_mqtt_is_held_until_its_last_write(tmp_path):
    """With --mqtt the final report is written once more after the broker is drained: the file
    was let go at the run's stop, and another run's report was then written over (review d1)."""
    path = tmp_path / "h.json"
    reporter = HealthReporter(path, interval_s=3600, exclusive=True)
    reporter.mirror = lambda report: None
    reporter.start("sensor", "a.csv", lambda: {"rows": 1}, "rows")
    reporter.stop("end")
    with pytest.raises(ValueError, match="is written by another run"):
        HealthReporter(path, interval_s=3600, exclusive=True)
    reporter.write()  # the publisher's, once drained
    reporter.release()
    HealthReporter(path, interval_s=3600, exclusive=True).release()


def test_a_live_run_refused_at_its_results_file_reports_the_refusal(tmp_path, capsys):
    """A live camera run says `connecting` while its stream opens; refused after that at its
    results file (--append forgotten), it left `connecting`, which the watchdog read as a scorer
    killed or out of memory (review r5)."""
    import cv2
    import numpy as np

    from image_fixtures import write_tiny_image_artifact
    from test_sources import MjpegServer

    model = write_tiny_image_artifact(tmp_path / "camera.onnx")
    frame = np.random.default_rng(0).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    server = MjpegServer([cv2.imencode(".jpg", frame)[1].tobytes()], whole_first=10_000)
    results, health = tmp_path / "r.jsonl", tmp_path / "h.json"
    results.write_text('{"frame": 0, "score": 1.0, "anomaly": false}\n')
    try:
        assert cli.main(["score", str(model), server.url, "--jsonl", str(results),
                         "--health", str(health)]) == cli.EXIT_INPUT
    finally:
        server.close()
    assert "already holds" in capsys.readouterr().err
    report = json.loads(health.read_text())
    assert report["status"] == "stopped" and report["stopped"] == "error"
    assert "already holds" in report["last_error"]
    assert cli.main(["health-check", str(health)]) == cli.EXIT_FAILURE
    assert "no longer running" not in capsys.readouterr().err


def test_a_lock_file_another_user_made_still_locks(tmp_path, monkeypatch):
    """A health file's lock left by a root run (0644) could not be opened for writing by a
    service's user, and the run went on unlocked (review d2): flock needs no write access."""
    import os

    from vigil.runtime.core import output

    path = tmp_path / "h.json"
    lock = str(tmp_path / "h.json.lock")
    open(lock, "w").close()
    real_open = os.open

    def no_write(name, flags, *args):  # as for a user who may not write root's file
        if str(name) == lock and flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(13, "Permission denied", name)
        return real_open(name, flags, *args)

    monkeypatch.setattr(output.os, "open", no_write)
    first = HealthReporter(path, interval_s=3600, exclusive=True)
    try:
        assert first._lock_fd is not None
        with pytest.raises(ValueError, match="is written by another run"):
            HealthReporter(path, interval_s=3600, exclusive=True)
    finally:
        first.release()
