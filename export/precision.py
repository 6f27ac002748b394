"""Which precision an export writes: INT8 only where it holds parity and pays off on this machine.

``auto`` (the default) keeps INT8 when it is within the parity tolerances *and* is faster at batch
1 on one thread, or much smaller at no cost in speed, than the FP32 graph, both timed here,
interleaved. Otherwise it writes FP32 and says why with the figures. ``int8`` keeps INT8 whenever
it holds parity, and where it does not writes nothing and says so (``--force``: keeps it even
then); ``fp32`` never quantizes. ``mixed`` (image
feature models only) quantizes the memory bank's product alone and keeps the network in FP32;
``auto`` chooses it, by the same tests, for feature models whose INT8 network no labeled defect
can check.
"""

from __future__ import annotations

import enum
import time

import numpy as np

from vigil.runtime.core.spec import ArtifactError

FASTER = 0.95        # INT8 p50 at most this share of FP32's counts as faster
SMALLER = 0.8        # or a file at most this share of FP32's ...
NOT_SLOWER = 1.05    # ... at a p50 at most this share of FP32's
TIME_BUDGET_S = 2.0  # interleaved timing of both graphs
MIN_PAIRS, MAX_PAIRS = 15, 300


class Precision(str, enum.Enum):
    AUTO = "auto"
    INT8 = "int8"
    FP32 = "fp32"
    MIXED = "mixed"   # the network FP32, the memory bank's product INT8 (feature models)


def int8_decision(misses: list[str], force: bool, quantized: str = "INT8",
                  precision: Precision = Precision.AUTO,
                  other: str = "") -> tuple[bool, str | None]:
    """(keep the quantized copy?, what to tell the user) given the parity tolerances it missed;
    ``quantized`` names the copy. Under an explicit ``precision`` (int8, mixed) a copy that
    misses is a ValueError, nothing written: the file must be what was asked for (it was FP32
    under an int8 name, exit 0). ``other``: another precision to suggest."""
    if not misses:
        return True, None
    reasons = f"{quantized} misses the parity tolerance (" + "; ".join(misses) + ")"
    if force:
        return True, reasons + "; kept because of --force"
    flag = "mixed" if quantized != "INT8" else "int8"
    if precision is Precision.AUTO:
        return False, reasons + f"; wrote FP32 instead (--precision {flag} --force keeps it)"
    raise ValueError(f"--precision {precision.value}: {reasons}, so nothing was written; "
                     f"--force keeps it anyway{other}, and --precision auto or fp32 writes FP32")


def keep_int8(misses: list[str], precision: Precision, force: bool, int8, fp32,
              feed: dict[str, np.ndarray], parity: dict,
              quantized: str = "INT8", other: str = "") -> tuple[bool, list[str], list[str]]:
    """(keep the quantized copy ``int8``?, warnings, notes): the parity gate, then, for
    ``auto``, whether it pays off at batch 1 here (its timings and sizes are added to
    ``parity``). A missed parity tolerance is a warning under ``auto`` and a ValueError under
    an explicit precision (``int8_decision``); ``auto``'s choice between two graphs that both
    hold parity is a note. ``quantized`` names the copy in the messages."""
    keep, message = int8_decision(misses, force, quantized, precision, other)
    warnings = [message] if message else []
    notes = []
    if keep and precision is Precision.AUTO and not misses:
        parity.update(batch1_cost(int8, fp32, feed))
        keep, message = int8_pays_off(parity, quantized)
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


def int8_pays_off(cost: dict, quantized: str = "INT8") -> tuple[bool, str]:
    """(keep the quantized copy?, the reason with the figures) from ``batch1_cost``;
    ``quantized`` names that copy in the reason."""
    speed = cost["int8_p50_ms"] / cost["fp32_p50_ms"]
    size = cost["int8_bytes"] / cost["fp32_bytes"]
    figures = (f"{quantized} {cost['int8_p50_ms']:.3f} ms and {cost['int8_bytes'] / 1e3:.0f} KB "
               f"against FP32 {cost['fp32_p50_ms']:.3f} ms and {cost['fp32_bytes'] / 1e3:.0f} KB at "
               "batch 1 on one thread of this machine")
    if speed <= FASTER or (size <= SMALLER and speed <= NOT_SLOWER):
        return True, f"kept {quantized}: {figures}"
    flag = "int8" if quantized == "INT8" else "mixed"
    return False, (f"wrote FP32: {quantized} is neither faster nor smaller ({figures}); "
                   f"use --precision {flag} to keep {quantized} anyway")


def max_finite_diff(a: np.ndarray, b: np.ndarray) -> float:
    """The largest |a - b| over the items both score finitely (0 when none does)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[both] - b[both]), initial=0.0))


def check_fp32_parity(keras_scores: np.ndarray, onnx_scores: np.ndarray, tolerance: float,
                      parity: dict) -> None:
    """Record the ONNX FP32 graph's difference from Keras in ``parity`` and refuse a broken
    conversion: each item within ``tolerance`` x max(1, |its Keras score|), and finite exactly
    where Keras is (a labeled reading far outside training may overflow both to infinity).
    ArtifactError naming the worst item otherwise."""
    keras_scores = np.asarray(keras_scores, dtype=np.float64)
    onnx_scores = np.asarray(onnx_scores, dtype=np.float64)
    finite = np.isfinite(keras_scores)
    if not np.array_equal(finite, np.isfinite(onnx_scores)):
        item = int(np.flatnonzero(finite != np.isfinite(onnx_scores))[0])
        raise ArtifactError(f"the ONNX FP32 graph's score of validation item {item} is "
                            f"{onnx_scores[item]} where Keras gives {keras_scores[item]}: the "
                            "conversion is broken (please report it, with the model)")
    diff = np.abs(onnx_scores[finite] - keras_scores[finite])
    allowed = tolerance * np.maximum(1.0, np.abs(keras_scores[finite]))
    parity["fp32_max_abs_diff"] = float(np.max(diff, initial=0.0))
    if (~finite).any():
        parity["fp32_nonfinite_items"] = int((~finite).sum())
    if (diff > allowed).any():
        worst = int(np.argmax(diff / allowed))
        raise ArtifactError(f"the ONNX FP32 graph's scores differ from Keras by up to "
                            f"{diff[worst]:.3g} on a score of {keras_scores[finite][worst]:.4g} "
                            f"(tolerance {allowed[worst]:.3g}). ONNX sums in another order than "
                            "TensorFlow, which a score made of large terms of opposite sign (a "
                            "model trained for a few steps: a fused model of 30 U-Net steps "
                            "missed by 0.0014) magnifies: train it longer (the default steps) "
                            "and export again; a fully trained model that misses it points to "
                            "a broken conversion (please report it, with the model)")


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    ra, rb = _ranks(np.asarray(a)), _ranks(np.asarray(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(np.sqrt((ra ** 2).sum() * (rb ** 2).sum()))
    if not denominator:  # constant scores: same ranking only if both are constant
        return 1.0 if not ra.any() and not rb.any() else 0.0
    return float((ra * rb).sum() / denominator)


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    # a change between neighbours (not np.diff: inf - inf is NaN, which split a tie of infinities)
    changes = np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1
    for stop in [int(change) for change in changes] + [len(values)]:
        ranks[order[start:stop]] = (start + stop - 1) / 2
        start = stop
    return ranks


def check_read_back(read_back_scores: np.ndarray, exported_scores: np.ndarray) -> None:
    """ArtifactError unless the written artifact, read back through the runtime, scores as the
    graph that was exported did (to float rounding)."""
    if not np.allclose(read_back_scores, exported_scores[: len(read_back_scores)], rtol=1e-4,
                       atol=1e-5):
        raise ArtifactError("it scores differently when read back through the runtime")
