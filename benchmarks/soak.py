"""Soak: a long run through the runtime, its memory sampled over time, every input accounted for.

Two phases, each one run of the runtime as ``vigil score`` does it (results written to a JSON-lines
file by the real writer, a health report kept):

* frames: a generated MJPG video (``--frames`` frames, default 100,000) with a few frames whose
  JPEG data is scrambled, read by the video-file source and scored one by one;
* rows: a generated CSV (``--rows`` rows, default 1,000,000) with missing cells, too-long gaps,
  extra fields and late timestamps, streamed through the sensor scorer.

Resident memory (VmRSS) is sampled every ``--sample-s`` seconds. Warm-up is the first
``--warm-up`` fraction of the items; after it, memory must not grow by more than
``--max-growth-mb``. Every input must be accounted for: scored, skipped with a reason, or dropped
with a count; the totals are checked against what was generated (the rows' expected windows and
skips come from an independent replay of the fill/skip rules), and against the lines on disk.

Models: by default the closed-form tiny artifacts of the tests (built by running
``tests/image_fixtures.py`` and ``tests/sensor_fixtures.py``, no TensorFlow); ``--train-sensor``
trains and exports a small LSTM (INT8) with ``vigil train``/``vigil export`` in a child process;
``--image-model``/``--sensor-model`` soak given artifacts. The soak process itself imports only the
runtime. This is a script, not a CI test:

    python benchmarks/soak.py --json results/soak.json
    python benchmarks/soak.py --frames 10000 --rows 100000 --train-sensor
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MB = 2**20


# --- models -------------------------------------------------------------------------------------

def child(*args: str, cwd: Path = ROOT) -> None:
    """Run a build step in a child process, so its imports (onnx, TensorFlow) stay out of here."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"soak: `{' '.join(args)}` failed:\n{done.stderr[-3000:]}")


def build_models(work: Path, args) -> tuple[Path, Path, str, str]:
    image, sensor = args.image_model, args.sensor_model
    image_kind = f"given: {image}" if image else None
    sensor_kind = f"given: {sensor}" if sensor else None
    if image is None:
        image, image_kind = work / "tiny-image.onnx", "tiny closed-form (tests/image_fixtures.py)"
        child("tests/image_fixtures.py", str(image))
    if sensor is None and args.train_sensor:
        data = work / "train-data"
        child("-c", "import sys; from vigil.training.synthetic import write_sensor_dataset; "
                    f"write_sensor_dataset({str(data)!r}, seed=0, train_rows=3000, test_rows=200)")
        keras = work / "sensor.keras"
        child("-m", "vigil", "train", "sensor", str(data / "train.csv"), "-o", str(keras),
              "--window", "16", "--score-last", "8", "--units", "16", "--epochs", "4",
              "--quiet")
        sensor = work / "sensor-int8.onnx"
        child("-m", "vigil", "export", str(keras), "-o", str(sensor), "--force")
        sensor_kind = "LSTM forecaster, window 16, 16 units, INT8 (trained by this script)"
    elif sensor is None:
        sensor, sensor_kind = work / "tiny-sensor.onnx", "tiny closed-form (tests/sensor_fixtures.py)"
        child("tests/sensor_fixtures.py", str(sensor))
    return Path(image), Path(sensor), image_kind, sensor_kind


# --- inputs -------------------------------------------------------------------------------------

def write_video(path: Path, frames: int, corrupt_every: int, size=(96, 72)) -> list[int]:
    """An MJPG video of a bar moving over a gradient; returns the frames made undecodable."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    if not writer.isOpened():
        raise SystemExit("soak: this OpenCV cannot write MJPG video")
    rng = np.random.default_rng(0)
    base = np.tile(np.linspace(70, 180, width, dtype=np.float32), (height, 1))
    noise = [rng.normal(0, 3, (height, width)).astype(np.float32) for _ in range(16)]
    for i in range(frames):
        image = base + noise[i % 16]
        x = i % (width - 8)
        image[:, x:x + 8] += 30
        writer.write(cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR))
    writer.release()
    corrupt = list(range(corrupt_every // 2, frames - 1, corrupt_every)) if corrupt_every else []
    if corrupt:
        scramble_frames(path, corrupt)
    return corrupt


def scramble_frames(path: Path, frames: list[int]) -> None:
    """Overwrite the JPEG data of the given frames with noise, keeping the container intact."""
    data = bytearray(path.read_bytes())
    wanted = set(frames)
    rng = np.random.default_rng(1)
    position, index, starts = 0, 0, {}
    last = max(frames) + 1
    while index <= last:
        position = data.find(b"\xff\xd8\xff", position)
        if position < 0:
            break
        if index in wanted or index - 1 in wanted:
            starts[index] = position
        position += 3
        index += 1
    for frame in frames:
        start, stop = starts[frame] + 2, starts[frame + 1] - 16
        data[start:stop] = rng.integers(0, 256, stop - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def write_rows(path: Path, rows: int, features, mean, std, max_gap: int) -> dict:
    """A CSV of ``rows`` readings near the model's normal statistics, with faults at known rows.

    Returns the fault layout: ``bad`` (rows with a missing/invalid cell or a wrong field count)
    and ``late`` (rows whose timestamp goes back in time)."""
    rng = np.random.default_rng(2)
    n = len(features)
    t = np.arange(rows)
    values = (np.asarray(mean) + np.asarray(std) * 0.3 *
              np.sin(2 * np.pi * t[:, None] / (200 + 37 * np.arange(n)))).astype(np.float64)
    values += np.asarray(std) * 0.05 * rng.standard_normal((rows, n))
    stamps = 1_700_000_000 + t
    bad = np.zeros(rows, dtype=bool)
    missing_cell = np.zeros(rows, dtype=bool)
    missing_cell[10_000::20_000] = True                       # one empty cell: filled
    extra_field = np.zeros(rows, dtype=bool)
    extra_field[123_456::200_000] = True                      # a field too many: filled
    gap_rows = np.zeros(rows, dtype=bool)
    for start in range(25_000, rows, 50_000):                 # too long to fill: skipped
        gap_rows[start:start + max_gap + 3] = True
    late = np.zeros(rows, dtype=bool)
    late[77_777::100_000] = True
    late &= ~(gap_rows | missing_cell | extra_field)
    stamps = np.where(late, stamps - 500, stamps)
    bad = missing_cell | extra_field | gap_rows
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(",".join(["timestamp", *features]) + "\n")
        for start in range(0, rows, 50_000):
            stop = min(rows, start + 50_000)
            text = np.char.mod("%.5f", values[start:stop])
            lines = []
            for offset, cells in enumerate(text.tolist()):
                i = start + offset
                if gap_rows[i]:
                    cells = [""] * n
                elif missing_cell[i]:
                    cells[i % n] = ""
                line = f"{stamps[i]}," + ",".join(cells)
                if extra_field[i]:
                    line += ",1"
                lines.append(line)
            handle.write("\n".join(lines) + "\n")
    return {"bad": bad, "late": late}


def expected_rows(bad: np.ndarray, window: int, stride: int, max_gap: int) -> dict:
    """Replay of the streaming rules (fill up to max_gap bad rows, else skip and restart):
    how many windows are scored, rows skipped and rows filled."""
    windows = skipped = filled = 0
    streak, have_good, in_ring, position = 0, False, 0, 0
    for is_bad in bad.tolist():
        if is_bad:
            streak += 1
            if not have_good or streak > max_gap:
                skipped += 1
                if in_ring:
                    in_ring = position = 0
                continue
            filled += 1
        else:
            streak, have_good = 0, True
        position += 1
        in_ring = min(in_ring + 1, window)
        if in_ring == window and (position - window) % stride == 0:
            windows += 1
    return {"windows": windows, "rows_skipped": skipped, "rows_filled": filled}


# --- sampling -----------------------------------------------------------------------------------

class Sampler:
    """Samples (seconds, items in, RSS MB) from a health reporter every ``every_s`` seconds."""

    def __init__(self, reporter, input_key: str, every_s: float) -> None:
        self.reporter, self.key, self.every_s = reporter, input_key, every_s
        self.samples: list[tuple[float, int, float]] = []
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        from vigil.runtime.core.health import rss_bytes

        report = self.reporter.snapshot()
        self.samples.append((time.monotonic() - self._started, int(report.get(self.key) or 0),
                             rss_bytes() / MB))

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def __enter__(self) -> "Sampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def memory(samples, total: int, warm_up: float) -> dict:
    """RSS at start, after warm-up, at the end; growth and slope after warm-up."""
    start = samples[0][2]
    after = [s for s in samples if s[1] >= warm_up * total]
    if len(after) < 2:
        after = samples[len(samples) // 10:] or samples
    warm = after[0][2]
    peak = max(s[2] for s in after)
    x = np.array([s[1] for s in after], dtype=np.float64)
    y = np.array([s[2] for s in after], dtype=np.float64)
    slope = float(np.polyfit(x, y, 1)[0] * 100_000) if np.ptp(x) > 0 else 0.0
    return {"start": round(start, 1), "after_warm_up": round(warm, 1),
            "end": round(samples[-1][2], 1), "max_after_warm_up": round(peak, 1),
            "growth_after_warm_up": round(peak - warm, 1),
            "slope_mb_per_100k_items": round(slope, 3), "samples": len(samples),
            "trace_items_mb": [[s[1], round(s[2], 1)]
                               for s in samples[::max(1, len(samples) // 12)] + samples[-1:]]}


def count_lines(path: Path) -> tuple[int, int, int]:
    """(lines, lines with a score, skipped lines) of a JSON-lines file."""
    lines = scored = skipped = 0
    with open(path, "rb") as handle:
        for line in handle:
            lines += 1
            if b'"skipped"' in line:
                skipped += 1
            elif b'"score": null' not in line:
                scored += 1
    return lines, scored, skipped


# --- phases -------------------------------------------------------------------------------------

def soak_frames(model: Path, work: Path, frames: int, args) -> dict:
    from vigil.runtime import load
    from vigil.runtime.camera.scoring import score_frames
    from vigil.runtime.core.health import HealthReporter
    from vigil.runtime.core.output import JsonLines
    from vigil.runtime.camera.sources import open_source, prefetched

    video = work / "soak.avi"
    began = time.perf_counter()
    corrupt = write_video(video, frames, args.corrupt_every)
    made_s = time.perf_counter() - began
    detector = load(model, threads=args.threads)
    out = work / "frames.jsonl"
    health = HealthReporter(work / "health-frames.json", args.health_interval, model=detector)
    sink = JsonLines(out)
    source = prefetched(open_source(str(video)))
    with Sampler(health, "frames_in", args.sample_s) as sampler:
        summary = score_frames(detector, source, sink, health=health)
        sink.close()
    lines, scored_lines, skipped_lines = count_lines(out)
    result = {
        "model": str(model), "video": {"frames": frames, "corrupted": len(corrupt),
                                       "bytes": video.stat().st_size, "write_s": round(made_s, 1)},
        "items_in": summary.frames_in, "scored": summary.scored, "skipped": summary.skipped,
        "dropped": summary.dropped, "lines": lines, "seconds": round(summary.seconds, 1),
        "items_per_s": round(summary.frames_in / summary.seconds, 1), "stopped": summary.stopped,
        "rss_mb": memory(sampler.samples, frames, args.warm_up),
        "health": json.loads((work / "health-frames.json").read_text()),
    }
    result["checks"] = {
        "every frame read": summary.frames_in == frames,
        "in = scored + skipped": summary.scored + summary.skipped == summary.frames_in,
        "skipped = corrupted": summary.skipped == len(corrupt),
        "nothing dropped (a file source never drops)": summary.dropped == 0,
        "one line per frame": (lines, scored_lines, skipped_lines) ==
                              (summary.frames_in, summary.scored, summary.skipped),
        "lines written = lines": summary.lines_written == lines and summary.lines_lost == 0,
        "health totals = summary": result["health"]["frames_in"] == summary.frames_in,
    }
    return result


def soak_rows(model: Path, work: Path, rows: int, args) -> dict:
    from vigil.runtime import load
    from vigil.runtime.core.health import HealthReporter
    from vigil.runtime.core.output import JsonLines
    from vigil.runtime.sensor.scoring import score_source

    detector = load(model, threads=args.threads)
    spec = detector.spec
    csv_path = work / "rows.csv"
    began = time.perf_counter()
    layout = write_rows(csv_path, rows, spec.features, spec.mean, spec.std, spec.max_gap)
    made_s = time.perf_counter() - began
    expected = expected_rows(layout["bad"], spec.window, spec.stride, spec.max_gap)
    out = work / "rows.jsonl"
    health = HealthReporter(work / "health-rows.json", args.health_interval, model=detector)
    sink = JsonLines(out)
    with Sampler(health, "rows_in", args.sample_s) as sampler:
        summary = score_source(detector, str(csv_path), sink, health=health)
        sink.close()
    lines, scored_lines, skipped_lines = count_lines(out)
    result = {
        "model": str(model), "csv": {"rows": rows, "bytes": csv_path.stat().st_size,
                                     "write_s": round(made_s, 1),
                                     "rows_with_faults": int(layout["bad"].sum()),
                                     "late_timestamps": int(layout["late"].sum())},
        "items_in": summary.rows, "windows": summary.windows, "rows_skipped": summary.rows_skipped,
        "rows_filled": summary.rows_filled, "rows_out_of_order": summary.rows_out_of_order,
        "alarms": summary.alarms, "lines": lines,
        "seconds": round(summary.seconds, 1), "items_per_s": round(summary.rows / summary.seconds, 1),
        "stopped": summary.stopped, "expected": expected,
        "rss_mb": memory(sampler.samples, rows, args.warm_up),
        "health": json.loads((work / "health-rows.json").read_text()),
    }
    result["checks"] = {
        "every row read": summary.rows == rows,
        "windows as replayed": summary.windows == expected["windows"],
        "skipped as replayed": summary.rows_skipped == expected["rows_skipped"],
        "filled as replayed": summary.rows_filled == expected["rows_filled"],
        "late timestamps counted": summary.rows_out_of_order == int(layout["late"].sum()),
        "one line per window or skipped row": (lines, scored_lines, skipped_lines) ==
                                              (summary.windows + summary.rows_skipped,
                                               summary.windows, summary.rows_skipped),
        "lines written = lines": summary.lines_written == lines and summary.lines_lost == 0,
        "health totals = summary": result["health"]["rows_in"] == summary.rows,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=100_000, help="video frames (0: skip)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="sensor rows (0: skip)")
    parser.add_argument("--image-model", type=Path, default=None)
    parser.add_argument("--sensor-model", type=Path, default=None)
    parser.add_argument("--train-sensor", action="store_true",
                        help="train and export a small LSTM (INT8) for the rows phase")
    parser.add_argument("--corrupt-every", type=int, default=10_000,
                        help="scramble one frame in this many (0: none)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--sample-s", type=float, default=0.5, help="seconds between RSS samples")
    parser.add_argument("--warm-up", type=float, default=0.1,
                        help="fraction of the items before memory must stay flat")
    parser.add_argument("--max-growth-mb", type=float, default=16.0,
                        help="allowed RSS growth after warm-up")
    parser.add_argument("--health-interval", type=float, default=5.0)
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the generated inputs and outputs (default: a temporary "
                             "one, removed at the end)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    for name in ("frames", "rows"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0; received {getattr(args, name)}")
    if not 0 <= args.warm_up < 1:
        parser.error(f"--warm-up must be in [0, 1); received {args.warm_up}")

    work = args.work or Path(tempfile.mkdtemp(prefix="vigil-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        image, sensor, image_kind, sensor_kind = build_models(work, args)
        result = {"machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
                  "models": {"image": image_kind, "sensor": sensor_kind}}
        if args.frames:
            print(f"soak: frames phase, {args.frames} frames ...", flush=True)
            result["frames"] = soak_frames(image, work, args.frames, args)
        if args.rows:
            print(f"soak: rows phase, {args.rows} rows ...", flush=True)
            result["rows"] = soak_rows(sensor, work, args.rows, args)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    failed = []
    for phase in ("frames", "rows"):
        if phase not in result:
            continue
        part = result[phase]
        memory_ok = part["rss_mb"]["growth_after_warm_up"] <= args.max_growth_mb
        part["checks"][f"RSS growth after warm-up <= {args.max_growth_mb} MB"] = memory_ok
        failed += [f"{phase}: {name}" for name, ok in part["checks"].items() if not ok]
        rss = part["rss_mb"]
        print(f"soak: {phase}: {part['items_in']} in, {part['lines']} lines out, "
              f"{part.get('skipped', part.get('rows_skipped'))} skipped, "
              f"{part.get('dropped', 0)} dropped; {part['items_per_s']}/s; RSS MB start "
              f"{rss['start']}, after warm-up {rss['after_warm_up']}, end {rss['end']} "
              f"(growth {rss['growth_after_warm_up']}, slope {rss['slope_mb_per_100k_items']} "
              f"MB/100k)")
    result["failed_checks"] = failed
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    else:
        print(text)
    if failed:
        print("soak: FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    print("soak: every input accounted for; memory flat after warm-up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
