"""Exploration: a nearest-neighbour shape distance beside the sensor model's error, on saved scores.

For every stream of the benchmarks' saved error-alone scores (run them with ``--neighbour-rows 0
--save-scores DIR/<set>.npz``), this computes in numpy the distance of each window's last ``rows``
normalized rows (optionally each column minus its mean over them: the shape) to the nearest such
window of the stream's normal training rows, with the training split, normalization and feature
roles that training uses, at the rows where the saved windows end. It then judges the distance
alone and its sum with the error (each standardized by its held-out normal scores, or divided by
their mean) with the library's default alarm policy and each benchmark's metrics
(``sweep_alarms.evaluate``). This is how the default ``neighbour_rows`` (16, shape, standardized
sum) was chosen on NAB, SKAB, SMD and ECG (docs/quality.md, "Alarm defaults"); the model computes
the same distance in its graph (``training.sensor_model.NeighbourDistance``). A variant's
fourth field also puts the stream's own recent windows in the bank, a bank that learns along the
stream as KNN-CAD's does (docs/quality.md, "Alarm defaults" has what it gave).

    python benchmarks/explore_neighbours.py --scores DIR --data ../shared/data --variants 8:1,16:0,16:1,32:1
    python benchmarks/explore_neighbours.py --scores DIR --variants 16:1:2048:2048
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from vigil.benchmarks.score_dump import ScoredStream, load_streams, save_streams
from vigil.benchmarks.sweep_alarms import PRIMARY, SETS, Policy, evaluate
from vigil.runtime.core import metrics
from vigil.runtime.core.spec import AdaptiveThresholdSpec
from vigil.runtime.sensor.tables import fill_gaps, read_table
from vigil.runtime.sensor.windows import sliding_windows
from vigil.training.sensor_data import DataOptions
from vigil.training.sensor_model import ModelOptions
from vigil.training.train_sensor import RESOLUTION  # the least spread of each standardized part

# The library's alarm defaults (k 5, hold 10, adaptive 2 x the 0.99 quantile over 1,000 scores,
# warm-up 1,000, the anomaly likelihood at z 4.27); tests/test_alarm_sweep.py keeps them equal to
# CalibrationOptions'.
DEFAULT_POLICY = Policy(5.0, 10, AdaptiveThresholdSpec(1000, 1000, quantile=0.99, factor=2.0),
                        likelihood_z=4.27)
# training's held-out share, least std of a feature (relative to its mean) and bank size
VALIDATION_FRACTION = DataOptions().validation_fraction
STD_FLOOR = DataOptions().relative_std_floor
BANK = ModelOptions().neighbour_entries


def training_and_scored_rows(data: Path, bench: str, stream: ScoredStream):
    """(training rows, their labels, the rows the saved scores index) as the benchmark read them."""
    if bench == "smd":
        folder = data / "smd" / "csv" / stream.name
        train = read_table(folder / "train.csv", time_column="t", label_column=None)
        test = read_table(folder / "test.csv", features=train.features, time_column="t",
                          label_column="anomaly")
        rows = fill_gaps(train.values, 3, train.source, train.features)
        return rows, np.zeros(len(rows), dtype=bool), fill_gaps(test.values, 3, test.source,
                                                                  test.features)
    if bench == "ecg":
        path = data / "ecg-mitbih" / "csv" / f"{stream.name}.csv"
        leads = tuple(path.open().readline().strip().split(",")[1:3])
        values = read_table(path, features=leads, time_column="time", label_column="anomaly").values
    else:
        table = read_table(data / ("nab/data" if bench == "nab" else "skab") / stream.name)
        values = fill_gaps(table.values, 3, table.source, table.features)
    n = stream.test_start
    return values[:n], stream.labels[:n], values


def nearest(queries: np.ndarray, bank: np.ndarray, chunk: int = 4096) -> np.ndarray:
    norms = (bank ** 2).sum(1)
    out = np.empty(len(queries))
    for i in range(0, len(queries), chunk):
        q = queries[i:i + chunk]
        d = (q ** 2).sum(1)[:, None] + norms[None, :] - 2 * q @ bank.T
        out[i:i + chunk] = np.sqrt(np.maximum(d.min(1), 0))
    return out


def nearest_recent(queries: np.ndarray, ends: np.ndarray, first: int, recent: int, lag: int,
                   stride: int, chunk: int = 1024) -> np.ndarray:
    """Each query's distance to the nearest of the stream's own earlier queries: those ending at
    or after row ``first``, at least ``lag`` rows before it, and among its last ``recent``
    (inf where there are none yet): a bank that also learns along the stream, as KNN-CAD's."""
    own = np.flatnonzero(ends >= first)
    own_ends, own_shapes = ends[own], queries[own]
    own_norms = (own_shapes ** 2).sum(1)
    out = np.full(len(queries), np.inf)
    for i in range(0, len(queries), chunk):
        q, e = queries[i:i + chunk], ends[i:i + chunk]
        last, oldest = e - lag, e - lag - recent * stride
        a = np.searchsorted(own_ends, oldest.min(), side="right")
        b = np.searchsorted(own_ends, last.max(), side="right")
        if b <= a:
            continue
        d = (q ** 2).sum(1)[:, None] + own_norms[None, a:b] - 2 * q @ own_shapes[a:b].T
        window = own_ends[None, a:b]
        d = np.where((window <= last[:, None]) & (window > oldest[:, None]), d, np.inf)
        out[i:i + chunk] = np.sqrt(np.maximum(d.min(1), 0))
    return out


def distance_stream(data: Path, bench: str, stream: ScoredStream, rows: int,
                    shape: bool, entries: int = BANK, recent: int = 0) -> ScoredStream:
    from vigil.training.sensor_data import SCORED, feature_roles

    train, labels, values = training_and_scored_rows(data, bench, stream)
    ends = np.flatnonzero(~np.isnan(stream.scores))
    stride = int(ends[1] - ends[0]) if len(ends) > 1 else 1
    split = int(round(len(train) * (1 - VALIDATION_FRACTION)))
    normal = train[:split][~labels[:split]].astype(np.float64)
    mean, std = normal.mean(0), normal.std(0)
    std = np.maximum(std, STD_FLOOR * np.abs(mean))
    std = np.where(std > 1e-8 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    keep = [i for i, r in enumerate(feature_roles(normal, mean)) if r == SCORED]

    def flat(windows):
        if shape:
            windows = windows - windows.mean(1, keepdims=True)
        return np.ascontiguousarray(windows.reshape(len(windows), -1))

    z_train = ((train - mean) / std)[:, keep]
    z_all = ((values - mean) / std)[:, keep]
    windows = sliding_windows(z_train[:split], rows, stride)
    labeled = sliding_windows(labels[:split, None].astype(float), rows, stride)
    bank = flat(windows[~labeled.reshape(len(windows), -1).any(1)])
    if len(bank) > entries:
        bank = bank[np.linspace(0, len(bank) - 1, entries).astype(int)]
    scores = np.full(len(values), np.nan)
    scored = ends[ends >= rows - 1]
    queries = flat(sliding_windows(z_all, rows, 1)[scored - rows + 1])
    scores[scored] = nearest(queries, bank)
    if recent:
        scores[scored] = np.minimum(scores[scored], nearest_recent(
            queries, scored, stream.test_start, recent, rows, stride))
    held = np.arange(max(split, rows - 1), len(train), stride)
    if (~labels[held]).any():
        held = held[~labels[held]]
    validation = nearest(flat(sliding_windows(z_train, rows, 1)[held - rows + 1]), bank)
    # ``threshold`` carries the distance's least spread (the sweep recalibrates thresholds)
    floor = RESOLUTION * float(np.sqrt(bank.shape[1]))
    return ScoredStream(stream.name, scores, stream.labels, stream.test_start, floor,
                        stream.consecutive, stream.hold, validation)


def summed(error: ScoredStream, distance: ScoredStream, weight: float,
           how: str) -> ScoredStream:
    """The two scores on one scale: standardized ('z') or divided by their normal mean ('mean')."""
    def scaled(s: ScoredStream, floor: float):
        m = max(float(s.validation_scores.mean()), 1e-9)
        d = max(float(s.validation_scores.std()), floor) if how == "z" else m
        offset = m if how == "z" else 0.0
        return (s.scores - offset) / d, (s.validation_scores - offset) / d
    a, va = scaled(error, RESOLUTION ** 2)
    b, vb = scaled(distance, distance.threshold)
    n = min(len(va), len(vb))
    return ScoredStream(error.name, a + weight * b, error.labels, error.test_start, 0.0,
                        error.consecutive, error.hold, va[-n:] + weight * vb[-n:])



def saved_sets_parser(doc: str) -> argparse.ArgumentParser:
    """The command line of the explorations that read saved sets with ``saved_sets``:
    ``--scores`` and the optional ``--distances``, under ``doc``'s first line."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--scores", type=Path, required=True,
                        help="a folder of <set>.npz saved with --save-scores")
    parser.add_argument("--distances", type=Path, default=None,
                        help="explore_neighbours.py's --cache folder: sum <set>-16-1.npz's "
                             "distances with the saved errors, as the default score does")
    return parser


def saved_sets(scores: Path, distances: Path | None):
    """(set, streams) for each ``<set>.npz`` in ``scores``; with ``distances`` (this script's
    ``--cache`` folder) each stream's error is summed with its ``<set>-16-1.npz`` distance, as the
    library's default score does."""
    for bench in SETS:
        path = scores / f"{bench}.npz"
        if not path.is_file():
            continue
        streams = load_streams(path)[1]
        if distances is not None:
            cached = load_streams(distances / f"{bench}-16-1.npz")[1]
            streams = [summed(e, d, 1.0, "z") for e, d in zip(streams, cached)]
        yield bench, streams


def mean_auroc(streams: list[ScoredStream]) -> float:
    values = []
    for s in streams:
        scores, labels = s.scores[s.test_start:], s.labels[s.test_start:]
        ok = ~np.isnan(scores)
        if labels[ok].any() and (~labels[ok]).any():
            values.append(metrics.auroc(scores[ok], labels[ok]))
    return float(np.mean(values))


def line(bench: str, label: str, streams: list[ScoredStream]) -> str:
    f = evaluate(bench, streams, DEFAULT_POLICY)
    nab = (f"  low-FP {f['nab_score_low_fp']:.1f}  low-FN {f['nab_score_low_fn']:.1f}"
           if bench == "nab" else "")
    return (f"{bench:4s} {label:<34} {PRIMARY[bench]} {f[PRIMARY[bench]]:.3f}  event_f1 "
            f"{f['event_f1']:.3f}  f1 {f['f1']:.3f}  AUROC {mean_auroc(streams):.3f}{nab}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scores", type=Path, required=True,
                        help="a folder of <set>.npz saved with --neighbour-rows 0 --save-scores")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--variants", default="8:1,16:0,16:1,32:1",
                        help="ROWS:SHAPE[:ENTRIES[:RECENT]] (SHAPE 1: each column minus its "
                             f"mean; ENTRIES: the bank's most entries, default {BANK}; RECENT: "
                             "also the stream's own last RECENT scored windows, from its test "
                             "part and ending ROWS rows or more before, default 0)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep each variant's distances here (<set>-<rows>-<shape>.npz)")
    args = parser.parse_args(argv)
    for bench in SETS:
        path = args.scores / f"{bench}.npz"
        if not path.is_file():
            continue
        _, errors = load_streams(path)
        print(line(bench, "error alone", errors), flush=True)
        for variant in args.variants.split(","):
            fields = variant.split(":")
            rows, shape = int(fields[0]), fields[1] == "1"
            entries = int(fields[2]) if len(fields) > 2 else BANK
            recent = int(fields[3]) if len(fields) > 3 else 0
            suffix = ("" if entries == BANK else f"-{entries}") + (f"-r{recent}" if recent else "")
            cached = (args.cache / f"{bench}-{rows}-{int(shape)}{suffix}.npz" if args.cache
                      else None)
            started = time.perf_counter()
            if cached is not None and cached.is_file():
                distances = load_streams(cached)[1]
            else:
                distances = [distance_stream(args.data, bench, s, rows, shape, entries, recent)
                             for s in errors]
                if cached is not None:
                    save_streams(cached, bench, distances)
            name = (f"{rows} rows{', shape' if shape else ''}"
                    f"{f', bank {entries}' if entries != BANK else ''}"
                    f"{f', recent {recent}' if recent else ''}")
            print(line(bench, f"distance, {name} ({time.perf_counter() - started:.0f} s)",
                       distances), flush=True)
            for how, weights in (("z", (0.5, 1.0, 2.0)), ("mean", (1.0,))):
                for w in weights:
                    print(line(bench, f"error + {w:g} x distance ({how}), {name}",
                               [summed(e, d, w, how) for e, d in zip(errors, distances)]),
                          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
