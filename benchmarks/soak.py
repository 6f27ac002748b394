"""Soak: a long run through the runtime, its memory sampled over time, every input accounted for.

Two phases, each one run of the runtime as ``vigil score`` does it (results written to a JSON-lines
file by the real writer, a health report kept):

* frames: a generated MJPG video (``--frames`` frames, default 100,000) with a few frames whose
  JPEG data is scrambled and one damaged region (twenty frames and their container chunks
  overwritten), read by the video-file source and scored one by one: every frame the container
  holds must have its line;
* rows: a generated CSV (``--rows`` rows, default 1,000,000) with missing cells, too-long gaps,
  extra fields, late timestamps, one wild timestamp (a clock jump to 2099), bytes that are not
  UTF-8, lines longer than the line limit and extreme sentinel readings (65535, -9999, 1e6,
  1e20), streamed through the sensor scorer; the windows holding sentinels are scored again one
  by one and must match (a score never depends on its batch), and every line must be strict JSON;
* unattended: ``vigil score`` run as a service would be, on a slice of the same CSV: stopped with
  SIGTERM while a slow reader holds stdout back, and on stdin; stdin cut off mid-line; stdout
  closed; results files that exist, that are an input or the model, or that another run holds
  (each refused and left whole, or continued with ``--append``). Every run must end with its
  documented exit code and an exact summary.

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


def build_models(work: Path, args: argparse.Namespace) -> tuple[Path, Path, str, str]:
    """(image artifact, sensor artifact, what each is): the given ones, or ones built here."""
    image: Path | None = args.image_model
    sensor: Path | None = args.sensor_model
    if image is not None:
        image_kind = f"given: {image}"
    else:
        image, image_kind = work / "tiny-image.onnx", "tiny closed-form (tests/image_fixtures.py)"
        child("tests/image_fixtures.py", str(image))
    if sensor is not None:
        sensor_kind = f"given: {sensor}"
    elif args.train_sensor:
        data = work / "train-data"
        child("-c", "import sys; from vigil.training.synthetic import write_sensor_dataset; "
                    f"write_sensor_dataset({str(data)!r}, seed=0, train_rows=3000, test_rows=200)")
        keras = work / "sensor.keras"
        child("-m", "vigil", "train", "sensor", str(data / "train.csv"), "-o", str(keras),
              "--window", "16", "--score-last", "8", "--units", "16", "--epochs", "4",
              "--quiet")
        sensor = work / "sensor-int8.onnx"
        child("-m", "vigil", "export", str(keras), "-o", str(sensor), "--precision", "int8",
              "--force")
        sensor_kind = "LSTM forecaster, window 16, 16 units, INT8 (trained by this script)"
    else:
        sensor, sensor_kind = work / "tiny-sensor.onnx", "tiny closed-form (tests/sensor_fixtures.py)"
        child("tests/sensor_fixtures.py", str(sensor))
    return Path(image), Path(sensor), image_kind, sensor_kind


# --- inputs -------------------------------------------------------------------------------------

def write_video(path: Path, frames: int, corrupt_every: int, size=(96, 72)) -> list[int]:
    """An MJPG video of a bar moving over a gradient; returns the frames made undecodable."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, size)
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


DAMAGED_REGION = 20  # frames


def damage_region(path: Path, first: int) -> None:
    """Overwrite ``DAMAGED_REGION`` frames from ``first`` on, container chunk headers included."""
    data = bytearray(path.read_bytes())
    starts: list[int] = []
    position = 0
    while len(starts) <= first + DAMAGED_REGION:
        position = data.find(b"\xff\xd8\xff", position)
        if position < 0:
            raise SystemExit("soak: the video is too short for a damaged region")
        starts.append(position)
        position += 3
    begin, end = starts[first] + 2, starts[first + DAMAGED_REGION] - 3
    data[begin:end] = np.random.default_rng(3).integers(0, 256, end - begin, np.uint8).tobytes()
    path.write_bytes(bytes(data))


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
    not_utf8 = np.zeros(rows, dtype=bool)
    not_utf8[31_313::100_000] = True                          # a byte that is not UTF-8: filled
    too_long = np.zeros(rows, dtype=bool)
    too_long[64_000::250_000] = True                          # a line past the limit: filled
    sentinel = np.zeros(rows, dtype=bool)
    sentinel[5_555::20_000] = True                            # extreme readings: scored
    late = np.zeros(rows, dtype=bool)
    late[77_777::100_000] = True
    bad = gap_rows | missing_cell | extra_field | not_utf8 | too_long
    late &= ~bad
    sentinel &= ~(bad | late)
    stamps = np.where(late, stamps - 500, stamps)
    if rows > 41_100:                                         # one timestamp in 2099
        bad[41_000] = late[41_000] = sentinel[41_000] = False
        stamps[41_000] = 4_102_444_800
    sentinels = (65535.0, -9999.0, 1e6, 1e20)
    for k, sentinel_row in enumerate(np.flatnonzero(sentinel)):
        values[sentinel_row, k % n] = sentinels[k % len(sentinels)]
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as handle:
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
                if sentinel[i]:
                    cells = [repr(float(v)) if abs(v) >= 9999 else c
                             for v, c in zip(values[i], cells)]
                line = f"{stamps[i]}," + ",".join(cells)
                if extra_field[i]:
                    line += ",1"
                if not_utf8[i]:
                    line += "\udce9"  # written as the single byte 0xE9
                if too_long[i]:
                    line += "7" * (2 << 20)
                lines.append(line)
            handle.write("\n".join(lines) + "\n")
    data = path.read_bytes()
    path.write_bytes(data.replace("\udce9".encode("utf-8", "surrogatepass"), b"\xe9"))
    return {"bad": bad, "late": late, "stamps": stamps, "unreadable": not_utf8 | too_long,
            "sentinel": sentinel}


def expected_late(stamps: np.ndarray, unreadable: np.ndarray, window: int) -> int:
    """Replay of the out-of-order rule: a row earlier than the latest timestamp of the ``window``
    rows before it (a line that cannot be read has no timestamp)."""
    from collections import deque

    recent: deque = deque()
    late = 0
    for i, (stamp, skip) in enumerate(zip(stamps.tolist(), unreadable.tolist())):
        while recent and recent[0][0] <= i - window - 1:
            recent.popleft()
        if skip:
            continue
        if recent and stamp < recent[0][1]:
            late += 1
        while recent and recent[-1][1] <= stamp:
            recent.pop()
        recent.append((i, stamp))
    return late


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
        rss = rss_bytes()
        if rss is None:
            raise SystemExit("soak: this system's resident memory cannot be read "
                             "(/proc/self/status VmRSS), and the soak checks it: run it on Linux")
        self.samples.append((time.monotonic() - self._started, int(report.get(self.key) or 0),
                             rss / MB))

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


def strict_json_lines(path: Path) -> bool:
    """Whether every line parses as RFC 8259 JSON (no NaN or Infinity) and ends in a newline."""
    def refuse(constant):
        raise ValueError(constant)

    with open(path, "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                return False
            try:
                json.loads(line, parse_constant=refuse)
            except ValueError:
                return False
    return True


def sentinel_scores_match(detector, csv_path: Path, out: Path, sentinel: np.ndarray) -> dict:
    """Windows holding a sentinel reading, scored again one by one, against the run's lines."""
    from vigil.runtime.core.output import read_results
    from vigil.runtime.sensor.tables import iter_rows, read_lines

    window = detector.spec.window
    wanted: set[int] = set()
    for sentinel_row in np.flatnonzero(sentinel).tolist():
        wanted.update(range(sentinel_row, sentinel_row + window))
    values: dict[int, np.ndarray] = {}
    options = detector.read_options()
    with open(csv_path, "rb") as handle:
        index = 0
        for _, row in iter_rows(read_lines(handle), options, str(csv_path)):
            if row is None:
                continue
            if any(index + k in wanted for k in range(window)):
                values[index] = row.values
            index += 1
    lines = {}
    for _, record in read_results(out):
        if record["index"] in wanted and record.get("score") is not None \
                and not record.get("filled"):
            lines[record["index"]] = record["score"]
    worst, compared = 0.0, 0
    for end, score in lines.items():
        rows = [values[i] for i in range(end - window + 1, end + 1) if i in values]
        if len(rows) < window or not all(np.isfinite(r).all() for r in rows):
            continue
        alone = float(detector.score(np.stack(rows)[None])[0])
        alone = alone if np.isfinite(alone) else sys.float_info.max
        worst = max(worst, abs(alone - score) / max(abs(alone), 1e-6))
        compared += 1
    return {"windows_compared": compared, "max_rel_diff": worst}


# --- phases -------------------------------------------------------------------------------------

def soak_frames(model: Path, work: Path, frames: int, args: argparse.Namespace) -> dict:
    from vigil.benchmarks.artifacts import load_image
    from vigil.runtime.camera.scoring import score_frames
    from vigil.runtime.core.health import HealthReporter
    from vigil.runtime.core.output import JsonLines
    from vigil.runtime.camera.sources import open_source, prefetched

    video = work / "soak.avi"
    began = time.perf_counter()
    corrupt = write_video(video, frames, args.corrupt_every)
    region = frames // 3 if frames >= 3 * DAMAGED_REGION + 10 else None
    if region is not None:
        while any(region <= c < region + DAMAGED_REGION + 1 for c in corrupt):
            region += DAMAGED_REGION
        damage_region(video, region)
    made_s = time.perf_counter() - began
    detector = load_image(model, args.threads, "--image-model")
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
                                       "damaged_region": [region, DAMAGED_REGION]
                                       if region is not None else None,
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
        # MJPG AVI is read through its index: exactly the damaged frames are skipped.
        "skipped = corrupted + damaged": summary.skipped == len(corrupt)
                                         + (DAMAGED_REGION if region is not None else 0),
        "every line strict JSON": strict_json_lines(out),
        "nothing dropped (a file source never drops)": summary.dropped == 0,
        "one line per frame": (lines, scored_lines, skipped_lines) ==
                              (summary.frames_in, summary.scored, summary.skipped),
        "lines written = lines": summary.lines_written == lines and summary.lines_lost == 0,
        "health totals = summary": result["health"]["frames_in"] == summary.frames_in,
    }
    return result


def soak_rows(model: Path, work: Path, rows: int, args: argparse.Namespace) -> dict:
    from vigil.benchmarks.artifacts import load_sensor
    from vigil.runtime.core.health import HealthReporter
    from vigil.runtime.core.output import JsonLines
    from vigil.runtime.sensor.scoring import score_source

    detector = load_sensor(model, args.threads, "--sensor-model")
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
    batches = sentinel_scores_match(detector, csv_path, out, layout["sentinel"])
    late = expected_late(layout["stamps"], layout["unreadable"], spec.window)
    result = {
        "model": str(model), "csv": {"rows": rows, "bytes": csv_path.stat().st_size,
                                     "write_s": round(made_s, 1),
                                     "rows_with_faults": int(layout["bad"].sum()),
                                     "rows_unreadable": int(layout["unreadable"].sum()),
                                     "rows_with_sentinels": int(layout["sentinel"].sum()),
                                     "late_timestamps": late},
        "sentinel_windows": batches,
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
        "late timestamps counted as replayed": summary.rows_out_of_order == late,
        "sentinel windows score the same alone": batches["windows_compared"] > 0
                                                 and batches["max_rel_diff"] <= 1e-4,
        "every line strict JSON": strict_json_lines(out),
        "one line per window or skipped row": (lines, scored_lines, skipped_lines) ==
                                              (summary.windows + summary.rows_skipped,
                                               summary.windows, summary.rows_skipped),
        "lines written = lines": summary.lines_written == lines and summary.lines_lost == 0,
        "health totals = summary": result["health"]["rows_in"] == summary.rows,
    }
    return result


def vigil(*args, **kwargs) -> subprocess.CompletedProcess:
    """``vigil`` in a child process, as a service manager would run it."""
    return subprocess.run([sys.executable, "-m", "vigil", *map(str, args)], capture_output=True,
                          timeout=600, **kwargs)


def last_summary(stderr: bytes) -> dict | None:
    for line in reversed(stderr.decode(errors="replace").splitlines()):
        if line.startswith('{"summary"'):
            return json.loads(line)["summary"]
    return None


def soak_unattended(model: Path, work: Path, rows: int) -> dict:
    """``vigil score`` stopped, starved and misused as a service manager and its users would."""
    import signal

    window = None
    spec_text = subprocess.run([sys.executable, "-c", "import sys, vigil; "
                                f"print(vigil.load({str(model)!r}).spec.window)"],
                               capture_output=True, text=True, check=True).stdout
    window = int(spec_text.strip())
    csv_path = work / "unattended.csv"
    source = work / "rows.csv"
    with open(source, "rb") as handle, open(csv_path, "wb") as target:
        for number, line in enumerate(handle):
            if number > rows:
                break
            target.write(line)
    checks, notes = {}, {}

    # SIGTERM while nobody reads stdout: whole lines only, counted exactly, exit 0.
    process = subprocess.Popen([sys.executable, "-m", "vigil", "score", str(model), str(csv_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None  # both piped
    time.sleep(3.0)  # long enough to fill the pipe and block the writer
    process.send_signal(signal.SIGTERM)
    received = b""
    while chunk := os.read(process.stdout.fileno(), 1 << 14):  # what came; b"" at the end
        received += chunk
        time.sleep(0.0005)
    errors = process.stderr.read()
    code = process.wait(60)
    summary = last_summary(errors) or {}
    lines = received.count(b"\n")
    checks["SIGTERM back-pressured: exit 0, whole lines, exact count"] = (
        code == 0 and received.endswith(b"\n") and summary.get("stopped") == "interrupted"
        and summary.get("lines_written") == lines and summary.get("lines_lost") == 0)
    notes["back_pressured"] = {"exit": code, "lines": lines, "summary": summary}

    # SIGTERM on stdin after a part of the rows: every row read has its line.
    out = work / "stdin.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "vigil", "score", str(model), "-",
                                "--jsonl", str(out)], stdin=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdin is not None  # piped
    with open(csv_path, "rb") as handle:
        head = b"".join(handle.readline() for _ in range(2001))
    process.stdin.write(head)
    process.stdin.flush()
    time.sleep(3.0)
    process.send_signal(signal.SIGTERM)
    errors = process.communicate(timeout=60)[1]
    summary = last_summary(errors) or {}
    written = out.read_bytes().count(b"\n")
    checks["SIGTERM on stdin: every row read has its line"] = (
        process.returncode == 0 and summary.get("stopped") == "interrupted"
        and summary.get("lines_written") == written
        and written == summary.get("windows", -1) + summary.get("rows_skipped", -1))
    notes["stdin"] = {"exit": process.returncode, "lines": written, "summary": summary}

    # stdin cut off mid-line: the cut row is a skipped line, not a reading.
    done = vigil("score", model, "-", input=head + head.splitlines()[-1][:6])
    last = json.loads(done.stdout.splitlines()[-1]) if done.stdout else {}
    checks["stdin cut mid-line: the cut row is skipped"] = (
        done.returncode == 0 and "ends without a newline" in str(last.get("skipped")))

    # stdout closed: exit 4 with a message, no traceback.
    done = subprocess.run(f'exec "{sys.executable}" -m vigil score "{model}" "{csv_path}" >&-',
                          shell=True, capture_output=True, timeout=600)
    checks["stdout closed: exit 4, no traceback"] = (done.returncode == 4
                                                     and b"Traceback" not in done.stderr)

    # Outputs: never an input or the model, never clobbered, locked, appended on restart.
    results = work / "results.jsonl"
    first = vigil("score", model, csv_path, "--jsonl", results)
    kept = results.read_bytes()
    refused = [vigil("score", model, work / "typo.csv", "--jsonl", results),
               vigil("score", model, csv_path, "--jsonl", results),
               vigil("score", model, csv_path, "--jsonl", csv_path, "--overwrite"),
               vigil("score", model, csv_path, "--jsonl", model, "--overwrite")]
    import fcntl

    with open(results, "ab") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused.append(vigil("score", model, csv_path, "--jsonl", results, "--append"))
    checks["outputs: refused with exit 2 and left whole"] = (
        first.returncode == 0 and all(r.returncode == 2 for r in refused)
        and results.read_bytes() == kept and csv_path.stat().st_size > 0)
    appended = vigil("score", model, csv_path, "--jsonl", results, "--append")
    checks["outputs: a restart with --append continues the file"] = (
        appended.returncode == 0 and results.read_bytes() == kept + kept)
    return {"rows": rows, "window": window, "checks": checks, "runs": notes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=100_000, help="video frames (0: skip)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="sensor rows (0: skip)")
    parser.add_argument("--unattended-rows", type=int, default=200_000,
                        help="rows for the service-manager phase, taken from the rows phase's "
                             "CSV (0: skip)")
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
    from vigil.benchmarks.artifacts import load_image, load_sensor
    from vigil.runtime.core.health import rss_bytes

    if rss_bytes() is None:  # the soak's memory checks read it, after minutes of writing inputs
        parser.error("this system's resident memory cannot be read (/proc/self/status VmRSS), "
                     "and the soak checks it: run it on Linux")
    for flag, given, load_kind in (("--image-model", args.image_model, load_image),
                                   ("--sensor-model", args.sensor_model, load_sensor)):
        if given is not None:  # checked before minutes of writing inputs for it
            try:
                load_kind(given, 1, flag)
            except ValueError as error:
                parser.error(str(error))

    work = args.work or Path(tempfile.mkdtemp(prefix="vigil-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        image, sensor, image_kind, sensor_kind = build_models(work, args)
        result: dict = {"machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
                        "models": {"image": image_kind, "sensor": sensor_kind}}
        if args.frames:
            print(f"soak: frames phase, {args.frames} frames ...", flush=True)
            result["frames"] = soak_frames(image, work, args.frames, args)
        if args.rows:
            print(f"soak: rows phase, {args.rows} rows ...", flush=True)
            result["rows"] = soak_rows(sensor, work, args.rows, args)
            if args.unattended_rows:
                print("soak: unattended phase ...", flush=True)
                result["unattended"] = soak_unattended(sensor, work,
                                                       min(args.unattended_rows, args.rows))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    failed = []
    if "unattended" in result:
        failed += [f"unattended: {name}" for name, ok in result["unattended"]["checks"].items()
                   if not ok]
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
    from vigil.runtime.core.report import json_text

    text = json_text(result)  # strict JSON: an undefined figure is null, never NaN
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
