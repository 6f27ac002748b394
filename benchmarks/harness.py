"""Timing primitives: repeated calls, latency statistics, cold start and peak memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

WARMUP_RUNS = 10
MIN_RUNS = 30


def latency_stats(seconds: Sequence[float], items: int) -> dict:
    """Per-batch and per-item latency percentiles (ms), spread and throughput of timed runs:
    ``items_per_s`` at the median call's latency (a typical call's rate, steady against a few
    slow calls), ``sustained_items_per_s`` over every timed run (their items over their total
    time: what a loop of such calls keeps up, slow calls included)."""
    t = np.asarray(seconds, dtype=np.float64)
    if t.size == 0:
        raise ValueError("`seconds` must hold at least one timing")
    if items < 1:
        raise ValueError(f"`items` must be >= 1; received {items}")
    ms = t * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    q25, q75 = np.percentile(ms, [25, 75])
    return {
        "runs": int(t.size), "batch": items,
        "p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()), "std_ms": float(ms.std()), "iqr_ms": float(q75 - q25),
        "p50_ms_per_item": float(p50 / items), "p99_ms_per_item": float(p99 / items),
        "items_per_s": float(items / np.median(t)),
        "sustained_items_per_s": float(items * t.size / t.sum()),
    }


def time_calls(call: Callable[[], object], budget_s: float, min_runs: int = MIN_RUNS,
               max_runs: int = 100_000) -> list[float]:
    """Warm up, then time ``call`` until its calls add up to ``budget_s`` and ``min_runs`` are
    done (``time_interleaved`` of one call)."""
    return time_interleaved({None: call}, budget_s, min_runs, block=1, max_runs=max_runs)[None]


def time_interleaved(calls: dict, budget_s: float, min_runs: int = MIN_RUNS, block: int = 5,
                     max_runs: int = 100_000, settle_s: float = 0.0) -> dict[object, list[float]]:
    """Warm up each, then time ``calls`` in turns of about equal time (``block`` calls of the
    slowest, as many of each other as take as long, by their warm-up times), each until its own
    timed calls add up to ``budget_s`` and number ``min_runs`` (or reach ``max_runs``): while
    several run, every one sees the same machine noise, so their ratios hold on a busy machine
    where one after the other they would not, and each reaches its budget at about the same
    time as the others (turns of equal counts left 93 % of a fast call's samples timed alone
    beside one 15 times slower, a review found; turns to the end of the slowest would time the
    slow one far past its budget). The turns are sized again after each round from the calls'
    mean times so far. ``settle_s``: a pause before each turn, and turns of at least twice it,
    so that the calls before have stopped (onnxruntime's pool threads spin for 20-50 ms after a
    run here, and spun against the next model's threads)."""
    warm: dict[object, float] = {}
    for name, call in calls.items():
        start = time.perf_counter()
        for _ in range(WARMUP_RUNS):
            call()
        warm[name] = max((time.perf_counter() - start) / WARMUP_RUNS, 1e-9)
    timings: dict[object, list[float]] = {name: [] for name in calls}
    spent = dict.fromkeys(calls, 0.0)

    def turns(per_call: dict[object, float]) -> dict[object, int]:
        slowest = max(max(per_call.values()), 2 * settle_s / block)
        return {name: max(1, min(round(block * slowest / per_call[name]), max_runs))
                for name in calls}

    turn = turns(warm)

    def needs_more(name) -> bool:
        runs = len(timings[name])
        return runs < max_runs and (runs < min_runs or spent[name] < budget_s)

    last = list(calls)[-1]  # whose calls ran last (the warm-up's): a turn after another's waits
    while any(needs_more(name) for name in calls):
        for name, call in calls.items():
            if settle_s and needs_more(name) and last not in (None, name):
                time.sleep(settle_s)
            last = name if needs_more(name) else last
            for _ in range(turn[name]):
                if not needs_more(name):
                    break
                start = time.perf_counter()
                call()
                elapsed = time.perf_counter() - start
                timings[name].append(elapsed)
                spent[name] += elapsed
        # sized again from what each call has taken so far: a warm-up on a busy machine can
        # misjudge a call several times over (a CI run left 59 % of a fast call's samples alone)
        turn = turns({name: max(spent[name] / len(timings[name]), 1e-9) if timings[name]
                      else warm[name] for name in calls})
    return timings


COLD_START = r"""
import json, resource, sys, time
started = time.perf_counter()
import numpy as np
from vigil import runtime
detector = runtime.load(sys.argv[1], threads=1)
imported_loaded = time.perf_counter() - started
if isinstance(detector, runtime.ImageDetector):
    h, w, c = detector.input_shape
    item = np.full((h, w, c), 128, np.uint8)
else:
    w, f = detector.input_shape
    item = np.tile(np.asarray(detector.spec.mean, dtype=np.float32), (w, 1))
detector.score(item)
first = time.perf_counter() - started
for _ in range(int(sys.argv[2])):
    detector.score(item)
# VmHWM belongs to this program's address space; ru_maxrss can carry the parent's peak
# across fork + exec.
try:
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    peak_kb = int(status.split()[0])
except (OSError, IndexError, ValueError):
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"import_load_s": imported_loaded, "import_load_first_score_s": first,
                  "peak_rss_mb": peak_kb / 1024}))
"""


def cold_start(model: str | Path, scores: int = 200) -> dict:
    """In a fresh Python process: import + load + first score time, and peak RSS after
    ``scores`` more scores."""
    out = subprocess.run([sys.executable, "-c", COLD_START, str(model), str(scores)],
                         capture_output=True, text=True, check=True)
    line = out.stdout.strip().splitlines()[-1]
    return json.loads(line)
