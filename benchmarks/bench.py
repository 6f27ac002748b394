"""``vigil bench``: latency and throughput of artifacts over a grid, with honest context.

For each cell (model x device x threads x batch): session creation, first inference, then timed
runs until a time budget (after warm-up): p50/p90/p99/max per batch and per item, spread,
throughput. Several models are timed side by side, interleaved in blocks within each cell, with
their p50 ratios (``side_by_side``). Per model: file size, cold start and peak RSS in a fresh process, the arithmetic
per inference counted from the graph against this CPU's estimated and measured peaks, and which
kernels ran (onnxruntime's profiler: the share of time in INT8 kernels). With ``--against
MODEL.keras``: the Keras model and its TFLite FP32/INT8 conversions, interleaved with the
runtime at batch 1 on one thread, as ratios.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnxruntime as ort

from vigil.runtime import ImageDetector, SensorDetector, load
from vigil.runtime.core.progress import Progress, silent

from .harness import cold_start, latency_stats, time_calls, time_interleaved
from .machine import cpu_info, peak_per_core

log = logging.getLogger("vigil")
INT8_KERNELS = ("QLinear", "Integer", "DynamicQuantize", "QGemm", "QAttention")
BASELINE_ROUNDS = 15
BASELINE_PER_ROUND = 10


@dataclass(frozen=True)
class BenchOptions:
    batches: tuple[int, ...] = (1, 8, 32)
    threads: tuple[int, ...] = (1,)
    devices: tuple[str, ...] = ("cpu",)
    seconds: float = 2.0
    input: str | None = None          # a CSV, image folder or video: real inputs
    decimal: str = "."                # the decimal mark of an ``input`` CSV
    against: str | None = None        # MODEL.keras: Keras and TFLite baselines
    cold_start: bool = True
    profile: bool = True
    notes: list[str] = field(default_factory=list)
    # (model, its kind, input): raises where the input is plainly the other kind's data (the
    # CLI names it as `vigil score` does), on the model this run loads anyway
    check_input: Callable[[str, str, str], None] | None = None


def inputs_for(detector: SensorDetector | ImageDetector, source: str | None, count: int = 64,
               decimal: str = ".") -> tuple[np.ndarray, str]:
    """(prepared items (n, ...) for the model, a description of where they came from)."""
    if isinstance(detector, ImageDetector):
        if source:
            from vigil.runtime.camera.sources import open_source

            items, sizes, unread = [], set(), 0
            with_source = open_source(source)
            try:
                for frame in with_source:
                    unread += frame.image is None  # a file or frame that could not be decoded
                    if frame.image is not None:
                        try:
                            items.append(detector.prepare(frame.image)[0])
                            sizes.add(f"{frame.image.shape[1]}x{frame.image.shape[0]}")
                        except ValueError as error:  # a frame the model cannot take (1 x 1)
                            raise ValueError(f"`input` {source!r}, frame {frame.index} "
                                             f"({frame.source}): {error}; benchmark with "
                                             f"frames the model scores") from None
                    if len(items) >= count:
                        break
            finally:
                with_source.close()
            if not items:
                raise ValueError(f"`input` {source!r} gave no decodable frame")
            h, w, _ = detector.input_shape
            return np.stack(items), (
                f"{len(items)} frames from {source} ({', '.join(sorted(sizes))}"
                + (f"; {unread} that could not be read left out" if unread else "")
                + f"), prepared for "
                f"the model ({w}x{h}) before timing: preparing is not in the timings "
                f"(prepare_ms_p50 is its cost per frame)")
        h, w, c = detector.input_shape
        rng = np.random.default_rng(0)
        base = rng.integers(90, 170, (count, h, w, c), dtype=np.uint8)
        return base, f"{count} synthetic uint8 frames {h}x{w}x{c} (uniform 90..170)"
    window, features = detector.input_shape
    if source:
        from vigil.runtime.sensor.tables import csv_files, fill_gaps, read_table
        from vigil.runtime.sensor.windows import sliding_windows

        table = read_table(csv_files(source, "--input")[0], features=detector.features, require_time=False,
                           label_column=None, decimal=decimal)
        values = fill_gaps(table.values, detector.spec.max_gap, table.source, table.features)
        windows = sliding_windows(values.astype(np.float32), window, detector.spec.stride)
        if len(windows) == 0:
            raise ValueError(f"`input` {source!r} has fewer than {window} rows")
        picked = windows[np.linspace(0, len(windows) - 1, min(count, len(windows))).astype(int)]
        return np.ascontiguousarray(picked), f"{len(picked)} windows from {table.source}"
    rng = np.random.default_rng(0)
    mean, std = np.asarray(detector.spec.mean), np.asarray(detector.spec.std)
    items = (mean + rng.standard_normal((count, window, features)) * std).astype(np.float32)
    return items, f"{count} synthetic windows {window}x{features} (training mean + N(0, std))"


# a model loaded on one thread, its timing inputs, their description
Prepared = tuple[SensorDetector | ImageDetector, np.ndarray, str]

# onnxruntime's pool threads spin on for 20-50 ms after a run (measured here: a camera model's
# p50 after another session's calls was 0.75-0.82 ms after pauses of 0-20 ms, 0.52 after 50 ms,
# alone 0.48-0.50): side by side at more than one thread, each turn waits this long first
SPIN_SETTLE_S = 0.1
FRAME_COST_FRAMES = 8  # frames of a camera's --input timed through preparing and locating


def frame_costs(detector: ImageDetector, source: str, frames: int = FRAME_COST_FRAMES) -> dict:
    """What a camera frame of ``source`` costs beside the model run, median ms over its first
    ``frames`` frames: ``prepare_ms_p50`` (resizing to the model's input) and
    ``reject_locate_ms_p50`` (a rejected frame's map brought to the frame's size, its regions
    found and boxed, as `vigil score` does for every reject; a passed frame skips it)."""
    from vigil.runtime.camera.frames import frame_boxes
    from vigil.runtime.camera.sources import open_source

    prepare, locate = [], []
    opened = open_source(source)
    try:
        for frame in opened:
            if frame.image is None:
                continue
            began = time.perf_counter()
            prepared = detector.prepare(frame.image)
            prepare.append(time.perf_counter() - began)
            _, maps = detector.run_prepared(prepared)
            began = time.perf_counter()
            full, found = detector.locate(frame.image, maps[0])
            frame_boxes(full, detector.pixel_threshold, True, found)
            locate.append(time.perf_counter() - began)
            if len(prepare) >= frames:
                break
    finally:
        opened.close()
    return {"prepare_ms_p50": float(np.median(prepare)) * 1e3 if prepare else None,
            "reject_locate_ms_p50": float(np.median(locate)) * 1e3 if locate else None,
            "frames_measured": len(prepare)}


def _runner(detector: SensorDetector | ImageDetector) -> Callable[[np.ndarray], object]:
    if isinstance(detector, ImageDetector):
        return detector.run_prepared
    return detector.score_with_features


def _batches(items: np.ndarray, batch: int) -> list[np.ndarray]:
    """The batches a cell's calls take in turn: every item is timed (batch 1 timed the first
    item alone, where the report said 64 windows, a review found), the items repeated where a
    batch outnumbers them, in about the memory the items take."""
    return [np.take(items, np.arange(start, start + batch), axis=0, mode="wrap")
            for start in range(0, len(items), batch)]


def kernel_profile(model: str | Path, items: np.ndarray, runs: int = 20) -> dict:
    """Share of kernel time per op type (onnxruntime profiler, one thread, batch 1)."""
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.intra_op_num_threads = 1
    with tempfile.TemporaryDirectory() as scratch:
        options.profile_file_prefix = os.path.join(scratch, "profile")
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for i in range(runs):
            session.run(None, {name: items[i % len(items)][None]})
        path = session.end_profiling()
        events = json.loads(Path(path).read_text())
    by_op: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + float(event.get("dur", 0))
    total = sum(by_op.values()) or 1.0
    shares = {k: v / total for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])}
    int8 = sum(v for k, v in shares.items() if any(t in k for t in INT8_KERNELS))
    return {"op_time_share": shares, "int8_kernel_time_share": int8}


def measured_roof(seconds: float = 1.0) -> dict:
    """This machine's achieved GEMM rate on one thread: FP32 MatMul and u8s8 MatMulInteger
    (1024^3), the practical ceiling of onnxruntime's kernels here. Needs the onnx package."""
    try:
        from onnx import TensorProto, helper
    except ImportError:
        return {"note": "measured roof needs the onnx package (pip install onnx: 31 MB, no "
                         "TensorFlow)"}
    n = 1024
    result = {}
    for name, a_type, b_type, op in (("fp32", TensorProto.FLOAT, TensorProto.FLOAT, "MatMul"),
                                     ("u8s8", TensorProto.UINT8, TensorProto.INT8, "MatMulInteger")):
        graph = helper.make_graph(
            [helper.make_node(op, ["a", "b"], ["c"])], name,
            [helper.make_tensor_value_info("a", a_type, [n, n]),
             helper.make_tensor_value_info("b", b_type, [n, n])],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT if name == "fp32"
                                           else TensorProto.INT32, [n, n])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feeds: dict[str, np.ndarray]
        if name == "fp32":
            feeds = {"a": rng.standard_normal((n, n), dtype=np.float32),
                     "b": rng.standard_normal((n, n), dtype=np.float32)}
        else:
            feeds = {"a": rng.integers(0, 255, (n, n), dtype=np.uint8),
                     "b": rng.integers(-127, 127, (n, n), dtype=np.int8)}
        timings = time_calls(lambda: session.run(None, feeds), seconds, min_runs=3)
        result[f"{name}_ops_per_s"] = 2.0 * n ** 3 / float(np.median(timings))
    return result


def bench(models: Sequence[str | Path], options: BenchOptions = BenchOptions(),
          progress: Progress = silent) -> dict:
    """Run the grid for every model; returns the machine-readable result. ``progress`` hears
    of each timed cell (model x device x threads x batch)."""
    # every model loaded and its input read before any timing: a bad one fails at once
    if options.against:
        _require_models_against(models, options.against)
    prepared = [_prepare(Path(model), options) for model in models]
    for model, (probe, items, _) in zip(models, prepared):
        _check_batch_memory(Path(model), probe, items, max(options.batches))
    info = cpu_info()
    result: dict = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**info, "onnxruntime": ort.__version__,
                    "providers_available": ort.get_available_providers()},
        "peak_per_core_estimate": peak_per_core(info),
        "cells": [], "models": [], "notes": list(options.notes),
    }
    result["measured_roof_one_thread"] = measured_roof()
    cells = len(models) * len(options.devices) * len(options.threads) * len(options.batches)
    timed = [0]

    def cell_done() -> None:
        timed[0] += 1
        progress("bench: timing cells", timed[0], cells)

    for model, (probe, _, _) in zip(models, prepared):
        most = probe.max_batch
        if max(options.batches) > most:
            result["notes"].append(
                f"{Path(model).name}: the runtime scores at most {most} items per model run, so "
                f"a batch above it is several runs of {most} (`runs_per_call` in its cells): "
                "items/s stops rising there")
    cores = info.get("cores") or os.cpu_count() or 1  # those this process may run on
    if max(options.threads) > cores:
        result["notes"].append(
            f"--threads {max(options.threads)} is more than this machine's {cores} cores: those "
            "cells time threads waiting for each other, not a device with more cores")
        log.warning("%s", result["notes"][-1])
    progress("bench: timing cells", 0, cells)
    result["models"] = [_model_entry(Path(model), probe, items, described, options, result)
                        for model, (probe, items, described) in zip(models, prepared)]
    for entry, label in zip(result["models"], model_labels(models)):
        entry["label"] = label  # told apart where two share a name, or one is given twice
    _time_cells([Path(m) for m in models], prepared, options, result, cell_done)
    # measured again after the cells, the larger kept: one 1-s measure on a busy machine varied
    # 2x between runs (identical files got opposite verdicts)
    again = measured_roof()
    roof = result["measured_roof_one_thread"]
    for key, value in again.items():
        if key.endswith("_ops_per_s"):
            roof[key] = max(roof.get(key, 0.0), value)
    for entry in result["models"]:
        _efficiency(entry, result)
    if timed[0] < cells:  # cells of a device that fell back to one already timed were skipped
        progress("bench: timing cells", cells, cells)
    if options.against:
        progress("bench: Keras and TFLite baselines", 0, 1)
        result["baselines"] = baselines(options.against, models, options)
        progress("bench: Keras and TFLite baselines", 1, 1)
    return result


def _check_batch_memory(model: Path, probe: SensorDetector | ImageDetector, items: np.ndarray,
                        batch: int) -> None:
    """ValueError when ``batch`` of ``model``'s inputs, and what a call returns for them, would
    take more than a quarter of this machine's memory (the runtime splits a batch into runs of
    its own size, so the input and the joined outputs are what grow with it: an image model's
    float32 maps, held twice while they are joined, outweigh its uint8 frames)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return
    per_item = items[0].nbytes
    if isinstance(probe, ImageDetector):
        height, width, _ = probe.input_shape
        per_item += 2 * height * width * 4  # the maps, and their copy while concatenated
    needed = batch * per_item
    if needed > memory / 4:
        largest = max(1, int(memory / 4 // per_item))
        raise ValueError(f"--batch {batch:,} of {model.name}'s inputs and outputs ({per_item:,} "
                         f"bytes each) takes {needed / 2**30:.1f} GiB, more than a quarter of "
                         f"this machine's {memory / 2**30:.1f} GiB: give --batch {largest:,} or "
                         f"less")


def _prepare(model: Path, options: BenchOptions) -> Prepared:
    """(the model loaded on one thread, its timing inputs, their description); a ValueError about
    ``--input`` names the flag and the model."""
    probe = load(model, threads=1)
    if options.input is not None and options.check_input is not None:
        options.check_input(str(model), probe.spec.kind, str(options.input))
    try:
        items, described = inputs_for(probe, options.input, decimal=options.decimal)
    except ValueError as error:
        if options.input is None:
            raise
        kind = "an image" if probe.spec.kind == "image" else "a sensor"
        raise ValueError(f"--input {str(options.input)!r} cannot be read for {model.name} "
                         f"({kind} model): {error}") from None
    return probe, items, described


def _model_entry(model: Path, probe: SensorDetector | ImageDetector, items: np.ndarray,
                 described: str, options: BenchOptions, result: dict) -> dict:
    """What is measured once per model: its file, input, cold start, operation counts and
    (with ``profile``) kernels."""
    image = isinstance(probe, ImageDetector)
    entry: dict = {
        "model": str(model), "kind": probe.spec.kind, "precision": probe.spec.precision,
        "file_bytes": model.stat().st_size, "input": described,
        "input_shape": list(probe.input_shape),
        "timed": ("the model run on frames already at its input size (run_prepared): "
                  "decoding and resizing a camera's frames come on top" if image else
                  "score_with_features on windows: the input check and the model run"),
        "max_batch_per_run": probe.max_batch}
    if isinstance(probe, ImageDetector) and options.input:  # narrowed for frame_costs
        entry.update(frame_costs(probe, str(options.input)))
        if entry["reject_locate_ms_p50"] is not None:
            entry["timed"] += (f"; on these frames a rejected one also costs "
                               f"{entry['reject_locate_ms_p50']:.3g} ms (median) to locate its "
                               f"defects at the frame's size, and preparing one "
                               f"{entry['prepare_ms_p50']:.3g} ms: a line's frame period must "
                               f"hold a reject's whole time")
    if isinstance(probe, SensorDetector) and probe.spec.running_normalization is not None:
        # what a row is normalized with depends on the alarms before it: vigil score runs such a
        # model one window at a time, so its batched rates are not reached in use (a reviewer:
        # 47,310 windows/s at batch 32 here, 3,180 streamed)
        entry["timed"] += ("; this model has running normalization, which `vigil score` runs one "
                           "window at a time: its batch-1 figures are the ones streaming reaches")
        result["notes"].append(f"{model.name}: running normalization scores a stream one window "
                               "at a time; its batched throughput is not reached by `vigil score`")
    if options.cold_start:
        entry["cold_start"] = cold_start(model)
    try:
        from .flops import count_flops

        flops = count_flops(model, batch=1)
        entry["ops_per_item"] = flops["ops"]
        entry["int8_ops_per_item"] = flops["int8_ops"]
        entry["ops_by_type"] = flops["by_op"]
    except ImportError:
        entry["ops_per_item"] = None
        result["notes"].append("operation counts need the onnx package (pip install onnx: "
                               "31 MB, no TensorFlow)")
    if options.profile:
        entry["kernels"] = kernel_profile(model, items)
    return entry


def _time_cells(models: list[Path], prepared: list[Prepared], options: BenchOptions, result: dict,
                cell_done: Callable[[], None]) -> None:
    """Time every (device, threads, batch) cell, the models of a cell interleaved in blocks so
    that each sees the same machine noise: their ratios (``side_by_side``) hold on a busy
    machine, where timed one after the other they did not (3x between two copies of one file)."""
    ran_on: list[set[tuple[str, int]]] = [set() for _ in models]
    labels = [entry["label"] for entry in result["models"]]
    for device in options.devices:
        for threads in options.threads:
            loaded: dict[int, tuple] = {}  # model index -> (detector, runner, session_s, actual)
            for k, model in enumerate(models):
                started = time.perf_counter()
                detector = load(model, providers=device, threads=threads)
                session_s = time.perf_counter() - started
                actual = device_of(detector.providers)
                if actual != device and device != "auto":
                    result["notes"].append(f"{labels[k]}: --device {device} is not available "
                                           f"here; it ran on {actual} ({detector.providers[0]})")
                if (actual, threads) in ran_on[k]:
                    result["notes"].append(f"{labels[k]}: {device} with {threads} thread(s) "
                                           f"repeated the {actual} cells; not measured twice")
                    continue
                ran_on[k].add((actual, threads))
                loaded[k] = (detector, _runner(detector), session_s, actual)
            for batch in options.batches:
                if not loaded:
                    break
                inputs = {k: _batches(prepared[k][1], batch) for k in loaded}
                first_s = {}
                for k, (_, run, _, _) in loaded.items():
                    first = time.perf_counter()
                    run(inputs[k][0])
                    first_s[k] = time.perf_counter() - first
                # at more than one thread, each model's turn waits for the other's pool threads
                # to stop spinning: two copies of one camera model side by side at 2 threads
                # took 1.6-1.9 ms p50 against 0.73-0.75 alone (a review)
                settle = SPIN_SETTLE_S if threads != 1 and len(loaded) > 1 else 0.0
                said = ("side by side at more than one thread, each model's turn began "
                        f"{SPIN_SETTLE_S:g} s after the other's last call: onnxruntime's pool "
                        "threads spin on after a run and would slow the next model's")
                if settle and said not in result["notes"]:
                    result["notes"].append(said)
                timings = time_interleaved(
                    {k: (lambda run=run, xs=itertools.cycle(inputs[k]): run(next(xs)))
                     for k, (_, run, _, _) in loaded.items()}, options.seconds,
                    settle_s=settle)
                p50, ran = {}, {}
                for k, (detector, _, session_s, actual) in loaded.items():
                    cell = _cell(models[k], prepared[k][0], result["models"][k], detector,
                                 device, threads, batch, session_s, first_s[k], actual,
                                 timings[k], result)
                    p50[labels[k]] = cell["p50_ms"]
                    ran[labels[k]] = actual
                    cell_done()
                if len(p50) > 1:
                    first_name = next(iter(p50))
                    devices = sorted(set(ran.values()))
                    ratios = {n: v / p50[first_name] for n, v in p50.items()}
                    # p50_ratio under a fixed name, over the first model (``reference``); the
                    # key named after that model's file is kept for scripts that read it
                    result.setdefault("side_by_side", []).append(
                        {"device": devices[0] if len(devices) == 1 else ran,
                         "requested_device": device, "threads": threads, "batch": batch,
                         "p50_ms": p50, "reference": first_name, "p50_ratio": ratios,
                         f"p50_over_{first_name}": dict(ratios)})


def model_labels(models: Sequence[str | Path]) -> list[str]:
    """How each model is named beside the others: its file name, its path where two share a
    name, and ``#2``, ``#3`` ... where one file is given twice."""
    paths = [Path(m) for m in models]
    labels = [str(p) if any(q.name == p.name and q != p for q in paths) else p.name
              for p in paths]
    return [label if labels[:k].count(label) == 0 else f"{label} #{labels[:k].count(label) + 1}"
            for k, label in enumerate(labels)]


def _cell(model: Path, probe: SensorDetector | ImageDetector, entry: dict,
          detector: SensorDetector | ImageDetector, device: str, threads: int, batch: int,
          session_s: float, first_s: float, actual: str, timings: list[float],
          result: dict) -> dict:
    """One model's timed cell, added to ``result["cells"]``."""
    stats = latency_stats(timings, batch)
    cell = {"model": str(model), "label": entry["label"], "precision": probe.spec.precision,
            "device": actual,
            "requested_device": device, "providers": detector.providers,
            "threads": threads, "session_create_s": session_s,
            "first_inference_s": first_s, **stats,
            "runs_per_call": -(-batch // entry["max_batch_per_run"])}
    if stats["p99_ms"] > UNSTABLE_P99_OVER_P50 * stats["p50_ms"]:
        cell["unstable"] = True
        result["notes"].append(
            f"{entry['label']} {actual} t{threads} b{batch}: p99 {stats['p99_ms']:.3g} ms (of "
            f"{stats['runs']} runs) is over {UNSTABLE_P99_OVER_P50:g}x p50 {stats['p50_ms']:.3g} "
            "ms: the machine was busy or throttling; rerun on a quiet machine before trusting "
            "the tail")
    if entry.get("ops_per_item"):
        cell["achieved_ops_per_s"] = entry["ops_per_item"] * stats["items_per_s"]
    result["cells"].append(cell)
    return cell


UNSTABLE_P99_OVER_P50 = 3.0  # a tail this far from the median says the machine was not quiet
DEVICE_OF_PROVIDER = {"TensorrtExecutionProvider": "tensorrt", "CUDAExecutionProvider": "cuda"}


def device_of(providers: Sequence[str]) -> str:
    """The device a session really runs on: its first provider's."""
    return DEVICE_OF_PROVIDER.get(providers[0], "cpu") if providers else "cpu"


def _efficiency(entry: dict, result: dict) -> None:
    """How far the batch-1 one-thread CPU cell runs from this core's peak, and from the roof."""
    own = entry.get("label", entry["model"])  # a label tells one file given twice apart
    cells = [c for c in result["cells"] if c.get("label", c["model"]) == own and c["batch"] == 1
             and c["threads"] == 1 and c["device"] == "cpu"]
    int8 = entry["precision"] == "int8"
    share = entry.get("kernels", {}).get("int8_kernel_time_share")
    if not cells or not entry.get("ops_per_item"):
        why = ("no operation count (it needs the onnx package)" if not entry.get("ops_per_item")
               else "no batch-1 one-thread cell on the CPU (add --batch 1 --threads 1 and, "
                    "beside another device, --device cpu)")
        # the kernel profile (batch 1, one thread, onnxruntime alone) still says whether INT8 runs
        entry["efficiency"] = {
            "achieved_ops_per_s": None, "isa_peak_ops_per_s": None, "times_below_isa_peak": None,
            "measured_roof_ops_per_s": None, "times_below_measured_roof": None,
            "int8_kernel_time_share": share,
            "verdict": (_verdict(int8, share, 0.0, 0.0) if int8 and share is not None
                        and share < 0.5 else f"no arithmetic limit: {why}")}
        return
    achieved = cells[0]["achieved_ops_per_s"]
    estimate, measured = result["peak_per_core_estimate"], result["measured_roof_one_thread"]
    if entry["precision"] in ("mixed", "int8"):
        # the quantized nodes' operations at the INT8 rate, the rest (an INT8 sensor model's
        # LSTMs, most of its work) at the float rate
        share = entry.get("int8_ops_per_item", 0.0) / entry["ops_per_item"]
        peak = _blended_rate(share, estimate["int8_ops"], estimate["fp32_flops"])
        roof = _blended_rate(share, measured.get("u8s8_ops_per_s"), measured.get("fp32_ops_per_s"))
    else:
        peak = estimate["int8_ops" if int8 else "fp32_flops"]
        roof = measured.get("u8s8_ops_per_s" if int8 else "fp32_ops_per_s")
    kernels = entry.get("kernels", {})
    entry["efficiency"] = {
        "achieved_ops_per_s": achieved,
        "isa_peak_ops_per_s": peak,
        "times_below_isa_peak": peak / achieved if peak and achieved else None,
        "measured_roof_ops_per_s": roof,
        "times_below_measured_roof": roof / achieved if roof and achieved else None,
        "int8_kernel_time_share": kernels.get("int8_kernel_time_share"),
        # The ISA estimate is a model; where this machine measurably beats it, the measured
        # GEMM roof is the better limit.
        "verdict": _verdict(int8, kernels.get("int8_kernel_time_share"),
                            max(peak or 0, roof or 0), achieved),
    }


def _blended_rate(int8_share: float, int8_rate: float | None,
                  float_rate: float | None) -> float | None:
    """Operations per second of a graph whose ``int8_share`` of operations run at ``int8_rate``
    and the rest at ``float_rate``: its total over the sum of both parts' times."""
    if not int8_rate or not float_rate:
        return None
    return 1.0 / (int8_share / int8_rate + (1.0 - int8_share) / float_rate)


def _verdict(int8: bool, share: float | None, peak: float, achieved: float) -> str:
    if int8 and share is not None and share < 0.5:
        return (f"only {share:.0%} of kernel time is in INT8 kernels: most of the graph runs in "
                "float (unquantized ops, or DequantizeLinear fallbacks); INT8 will not pay off")
    if not peak:
        return ("no arithmetic limit known here (no clock for the ISA peak and no measured "
                "roof): compare the p50 with other runs instead")
    ratio = peak / achieved if achieved else float("inf")
    if ratio < 1:
        return (f"{1 / ratio:.1f}x faster than the measured arithmetic limit: the roof was "
                "measured while the machine was busy, or the graph's operation count is too "
                "high; rerun on a quiet machine")
    if ratio <= 3:
        return f"within {ratio:.1f}x of the arithmetic limit: compute-bound and efficient"
    return (f"{ratio:.1f}x below the arithmetic limit: small or memory-bound layers, call "
            "overhead, or kernels that do not use the widest instructions")


def baselines(keras_path: str | Path, models: Sequence[str | Path], options: BenchOptions) -> dict:
    """Keras call and TFLite FP32/INT8 vs the runtime, interleaved, batch 1, one thread."""
    _require_models_against(models, keras_path)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    from vigil.export.tflite import tflite_runner, to_tflite_isolated
    from vigil.training.checkpoint import register_layers

    register_layers()
    model = keras.models.load_model(keras_path, safe_mode=True, compile=False)
    callers: dict[str, Callable] = {}
    detectors = [load(path, threads=1) for path in models]
    # the first model's inputs feed every engine: all of them score the same Keras model's data
    items, _ = inputs_for(detectors[0], options.input, count=32, decimal=options.decimal)
    for name, detector in zip(runtime_names(models, [d.spec.precision for d in detectors]),
                              detectors):
        callers[name] = _runner(detector)
    for name, int8 in (("tflite_fp32", False), ("tflite_int8", True)):
        try:
            callers[name] = tflite_runner(to_tflite_isolated(keras_path, int8, items))
        except Exception as error:  # TFLite cannot convert some graphs; say so, keep the rest
            options.notes.append(f"{name} conversion failed: {str(error).splitlines()[0][:200]}")
    callers["keras_call"] = lambda x: model(x, training=False)
    compiled = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    callers["keras_tf_function"] = compiled
    timings: dict[str, list[float]] = {name: [] for name in callers}
    for call in callers.values():
        for i in range(5):
            call(items[i % len(items)][None])
    for r in range(BASELINE_ROUNDS):
        for name, call in callers.items():
            # the first call of a turn runs after another engine's, its caches cold: untimed (a
            # review found it set the p99, an INT8 model's 1.0 ms against 0.56 without it)
            call(items[(r * BASELINE_PER_ROUND) % len(items)][None])
            for i in range(BASELINE_PER_ROUND):
                x = items[(r * BASELINE_PER_ROUND + i) % len(items)][None]
                start = time.perf_counter()
                call(x)
                timings[name].append(time.perf_counter() - start)
    stats = {name: latency_stats(t, 1) for name, t in timings.items()}
    for name, stat in stats.items():
        if stat["p99_ms"] > UNSTABLE_P99_OVER_P50 * stat["p50_ms"]:
            options.notes.append(f"{name}: p99 {stat['p99_ms']:.3g} ms is over "
                                 f"{UNSTABLE_P99_OVER_P50:g}x p50 {stat['p50_ms']:.3g} ms: the "
                                 "machine was busy or throttling; rerun on a quiet machine before "
                                 "trusting the tail")
    p50 = {name: s["p50_ms"] for name, s in stats.items()}
    return {"keras": str(keras_path), "batch": 1, "threads": 1, "stats": stats,
            "ratios": baseline_ratios(p50),
            "notes": list(options.notes)}


def _require_models_against(models: Sequence[str | Path], against: str | Path) -> None:
    """Refuse Keras baselines without a runtime model: they are ratios to the runtime's time."""
    if not models:
        raise ValueError(f"the Keras and TFLite baselines of {str(against)!r} are timed against "
                         "the runtime: give one or more MODEL.onnx files, got none")


def runtime_names(models: Sequence[str | Path], precisions: Sequence[str]) -> list[str]:
    """Each artifact's name in the ratios: ``runtime_<precision>``, and where several share a
    precision, its file's stem after it (``runtime_fp32_sensor``), numbered where stems repeat
    (``runtime_fp32_sensor_2``)."""
    names = []
    for path, precision in zip(models, precisions):
        name = f"runtime_{precision}"
        if list(precisions).count(precision) > 1:
            name += "_" + re.sub(r"[^A-Za-z0-9]+", "_", Path(path).stem).strip("_")
        base, number = name, 1
        while name in names:
            number += 1
            name = f"{base}_{number}"
        names.append(name)
    return names


def baseline_ratios(p50: dict[str, float]) -> dict[str, float]:
    """Each engine's p50 over each runtime artifact's, ``{other}_over_runtime_{precision}``: over
    the INT8, FP32 and mixed artifacts alike (the defaults are FP32 for sensors and mixed for
    feature camera models)."""
    runtimes = [name for name in p50 if name.startswith("runtime_")]
    return {f"{other}_over_{base}": p50[other] / p50[base]
            for base in runtimes
            for other in ("keras_call", "keras_tf_function", "tflite_int8", "tflite_fp32",
                          *runtimes)
            if other != base and other in p50}


# a bench cell's numbers, as --compare reads them
TIMED_NUMBERS = ("threads", "batch", "p50_ms", "p90_ms", "p99_ms", "max_ms", "iqr_ms",
                 "p50_ms_per_item", "p99_ms_per_item", "items_per_s", "sustained_items_per_s",
                 "runs", "runs_per_call", "session_create_s", "first_inference_s")


def compare(paths: Sequence[str | Path]) -> dict:
    """Merge several bench JSON files (from different machines) into one table; each run's
    notes (an unstable tail, a device that fell back) are kept, named by their run."""
    rows, notes, runs = [], [], []
    labels: dict[str, int] = {}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise ValueError(f"--compare {str(path)!r} cannot be read ({error.strerror or error});"
                             f" expected a `vigil bench --json` output") from None
        except ValueError as error:
            raise ValueError(f"--compare {str(path)!r} is not JSON ({error}); expected a `vigil "
                             f"bench --json` output") from None
        cells = data.get("cells") if isinstance(data, dict) else None
        if not isinstance(cells, list) or not all(isinstance(c, dict) and "p50_ms" in c
                                                  for c in cells):
            raise ValueError(f"--compare {str(path)!r} is not a `vigil bench --json` output (it "
                             f"has no list of timed cells)")
        for n, cell in enumerate(cells):  # compared and sorted as numbers: never text
            wrong = [key for key in TIMED_NUMBERS if cell.get(key) is not None
                     and (isinstance(cell[key], bool)
                          or not isinstance(cell[key], (int, float)))]
            if wrong:
                raise ValueError(f"--compare {str(path)!r}: cell {n}'s {wrong[0]} is "
                                 f"{cell[wrong[0]]!r}, where `vigil bench --json` writes a "
                                 f"number; give the file as vigil bench wrote it (run vigil bench "
                                 f"MODEL --json OUT again)")
        machine = data.get("machine", {})
        label = f"{Path(path).stem} ({machine.get('model', '?')}, {machine.get('cores', '?')} cores)"
        labels[label] = labels.get(label, 0) + 1
        if labels[label] > 1:  # the same file (or a same-named one) twice: rows told apart
            label = f"{label} #{labels[label]}"
        for cell in cells:
            model = cell.get("label") or Path(str(cell.get("model"))).name
            rows.append({"run": f"{label}: {model}", **{k: cell.get(k) for k in (
                "model", "precision", "device", "threads", "batch", "p50_ms", "p90_ms", "p99_ms",
                "max_ms", "iqr_ms", "p50_ms_per_item", "p99_ms_per_item", "items_per_s",
                "sustained_items_per_s", "runs", "runs_per_call", "session_create_s",
                "first_inference_s")},
                "unstable": bool(cell.get("unstable", False))})
        notes += [f"{label}: {note}" for note in data.get("notes", []) if isinstance(note, str)]
        # what a run measured besides its cells: per model (cold start, efficiency), the Keras
        # and TFLite baselines, the side-by-side ratios, the machine
        runs.append({"run": label, "file": str(path), "machine": machine,
                     **{key: data[key] for key in ("models", "baselines", "side_by_side",
                                                   "measured_roof_one_thread") if key in data}})
    if not rows:
        raise ValueError(f"no benchmark cells in {list(map(str, paths))}; expected `vigil bench "
                         "--json` outputs")
    return {"compare": [str(p) for p in paths], "cells": rows, "runs": runs, "notes": notes}


def refuse_other_keras(models: list[str], against: str) -> None:
    """ValueError, before any timing, when ``--against`` is not the model an artifact was
    exported from: another kind, another input shape (its timings were lost to TFLite's shape
    error at the end), or, where the artifact records it, another .keras file (timed with no
    word, its ratios were another model's)."""
    from vigil.runtime import load
    from vigil.training.checkpoint import keras_identity, load_run

    record = load_run(against).record
    kind = record.get("kind")
    for model in models:
        spec = load(model).spec
        mine = spec.kind
        if kind is not None and mine != kind:
            raise ValueError(f"`--against` {against!r} is {'an' if kind == 'image' else 'a'} "
                             f"{kind} model and {model!r} is {'an' if mine == 'image' else 'a'} "
                             f"{mine} model: give the .keras model the artifact was exported "
                             "from")
        shape = ((record.get("window"), len(record.get("features") or ())) if mine == "sensor"
                 else (record.get("height"), record.get("width"), record.get("channels")))
        if None not in shape and tuple(shape) != tuple(spec.input_shape):
            raise ValueError(f"`--against` {against!r} takes inputs of shape {tuple(shape)} and "
                             f"{model!r} of {tuple(spec.input_shape)}: give the .keras model "
                             "the artifact was exported from")
        exported_from = spec.training.get("keras_sha256")
        timed = keras_identity(record).get("keras_sha256")
        if exported_from and timed and exported_from != timed:
            raise ValueError(f"`--against` {against!r} (sha256 {timed[:12]}) is not the .keras "
                             f"model {model!r} was exported from (sha256 {exported_from[:12]}): "
                             "its ratios would compare two models; give that one, or export "
                             "this one")
