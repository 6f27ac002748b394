"""Latency and throughput of an artifact through the runtime (``vigil bench``)."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort

from .detector import load

WARMUP_RUNS = 10
MIN_RUNS = 30


def latency_stats(seconds: Sequence[float], items: int) -> dict:
    """Per-batch and per-item latency percentiles (ms) and throughput from timed runs."""
    t = np.asarray(seconds, dtype=np.float64)
    if t.size == 0:
        raise ValueError("`seconds` must hold at least one timing")
    ms = t * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "runs": int(t.size), "batch": items,
        "p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()), "std_ms": float(ms.std()),
        "iqr_ms": float(np.subtract(*np.percentile(ms, [75, 25]))),
        "p50_ms_per_item": float(p50 / items),
        "items_per_s": float(items / np.median(t)),
    }


def time_calls(call, budget_s: float, min_runs: int = MIN_RUNS) -> list[float]:
    for _ in range(WARMUP_RUNS):
        call()
    timings: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(timings) < min_runs or time.perf_counter() < deadline:
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return timings


def cold_start_seconds(model: str | Path) -> float:
    """Import the runtime, load the model and score one window, in a fresh Python process."""
    code = (
        "import time; t=time.perf_counter(); import numpy as np; import runtime; "
        f"d=runtime.load({str(model)!r}); w,f=d.input_shape; "
        "d.score(np.tile(np.asarray(d.spec.mean,dtype=np.float32),(w,1))); "
        "print(time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_artifact(model: str | Path, batches: Sequence[int] = (1, 32),
                   threads: Sequence[int] = (1,), device: str = "cpu",
                   seconds: float = 2.0) -> dict:
    """Sweep batch sizes and thread counts; inputs are shaped from the artifact's metadata
    (normal-looking windows: the training mean plus Gaussian noise of the training std)."""
    cells = []
    spec = None
    for n_threads in threads:
        started = time.perf_counter()
        detector = load(model, providers=device, threads=n_threads)
        session_s = time.perf_counter() - started
        spec = detector.spec
        rng = np.random.default_rng(0)
        window, features = detector.input_shape
        for batch in batches:
            x = (np.asarray(spec.mean) + rng.standard_normal((batch, window, features))
                 * np.asarray(spec.std)).astype(np.float32)
            first = time.perf_counter()
            detector.score(x)
            first_s = time.perf_counter() - first
            stats = latency_stats(time_calls(lambda: detector.score(x), seconds), batch)
            cells.append({"threads": n_threads, "device": device, "providers": detector.providers,
                          "session_s": session_s, "first_inference_s": first_s, **stats})
    return {
        "model": str(model), "precision": spec.precision if spec else None,
        "input": "synthetic windows shaped from the artifact metadata",
        "model_bytes": Path(model).stat().st_size,
        "cold_start_s": cold_start_seconds(model),
        "machine": {"cpu": _cpu_name(), "cores": _cores(), "python": platform.python_version(),
                    "onnxruntime": ort.__version__,
                    "providers": ort.get_available_providers()},
        "cells": cells,
    }


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
