"""Which precision an export writes: INT8 only where it holds parity and pays off on this machine.

``auto`` (the default) keeps INT8 when it is within the parity tolerances *and* is faster at batch
1 on one thread, or much smaller at no cost in speed, than the FP32 graph, both timed here,
interleaved. Otherwise it writes FP32 and says why with the figures. ``int8`` keeps INT8 whenever
it holds parity (``--force``: even when it does not); ``fp32`` never quantizes.
"""

from __future__ import annotations

import enum
import time

import numpy as np

FASTER = 0.95        # INT8 p50 at most this share of FP32's counts as faster
SMALLER = 0.8        # or a file at most this share of FP32's ...
NOT_SLOWER = 1.05    # ... at a p50 at most this share of FP32's
TIME_BUDGET_S = 2.0  # interleaved timing of both graphs
MIN_PAIRS, MAX_PAIRS = 15, 300


class Precision(str, enum.Enum):
    AUTO = "auto"
    INT8 = "int8"
    FP32 = "fp32"


def int8_decision(misses: list[str], force: bool) -> tuple[bool, str | None]:
    """(keep INT8?, what to tell the user) given the parity tolerances INT8 missed."""
    if not misses:
        return True, None
    reasons = "INT8 misses the parity tolerance (" + "; ".join(misses) + ")"
    if force:
        return True, reasons + "; kept because of --force"
    return False, reasons + "; wrote FP32 instead (use --force to keep INT8)"


def keep_int8(misses: list[str], precision: Precision, force: bool, int8, fp32,
              feed: dict[str, np.ndarray], parity: dict) -> tuple[bool, list[str], list[str]]:
    """(keep INT8?, warnings, notes): the parity gate, then, for ``auto``, whether INT8 pays off
    at batch 1 here (its timings and sizes are added to ``parity``). A missed parity tolerance is
    a warning; ``auto``'s choice between two graphs that both hold parity is a note."""
    keep, message = int8_decision(misses, force)
    warnings = [message] if message else []
    notes = []
    if keep and precision is Precision.AUTO and not misses:
        parity.update(batch1_cost(int8, fp32, feed))
        keep, message = int8_pays_off(parity)
        notes.append(message)
    return keep, warnings, notes


def batch1_cost(int8, fp32, feed: dict[str, np.ndarray]) -> dict:
    """Batch-1, one-thread p50 latency (ms) and serialized size (bytes) of both ModelProtos."""
    from .convert import cpu_session

    sessions = {name: cpu_session(proto, threads=1) for name, proto in (("int8", int8),
                                                                         ("fp32", fp32))}
    for session in sessions.values():
        for _ in range(5):
            session.run(None, feed)
    times: dict[str, list[float]] = {"int8": [], "fp32": []}
    started = time.perf_counter()
    while len(times["int8"]) < MAX_PAIRS and (len(times["int8"]) < MIN_PAIRS
                                              or time.perf_counter() - started < TIME_BUDGET_S):
        for name, session in sessions.items():
            tick = time.perf_counter()
            session.run(None, feed)
            times[name].append(time.perf_counter() - tick)
    return {"int8_p50_ms": float(np.median(times["int8"]) * 1e3),
            "fp32_p50_ms": float(np.median(times["fp32"]) * 1e3),
            "int8_bytes": len(int8.SerializeToString()), "fp32_bytes": len(fp32.SerializeToString()),
            "timed_pairs": len(times["int8"])}


def int8_pays_off(cost: dict) -> tuple[bool, str]:
    """(keep INT8?, the reason with the figures) from ``batch1_cost``."""
    speed = cost["int8_p50_ms"] / cost["fp32_p50_ms"]
    size = cost["int8_bytes"] / cost["fp32_bytes"]
    figures = (f"INT8 {cost['int8_p50_ms']:.3f} ms and {cost['int8_bytes'] / 1e3:.0f} KB against "
               f"FP32 {cost['fp32_p50_ms']:.3f} ms and {cost['fp32_bytes'] / 1e3:.0f} KB at batch 1 "
               "on one thread of this machine")
    if speed <= FASTER or (size <= SMALLER and speed <= NOT_SLOWER):
        return True, f"kept INT8: {figures}"
    return False, (f"wrote FP32: INT8 is neither faster nor smaller ({figures}); "
                   "use --precision int8 to keep INT8 anyway")
