"""Choose the sensor alarm defaults on all four real sets at once, from saved scores.

Each quality benchmark run with ``--save-scores`` leaves every stream's window scores, labels and
held-out normal validation scores (``benchmarks/score_dump.py``). This script applies a grid of
alarm policies to them with the runtime's own code (``calibrate`` for the Gaussian threshold on the
validation scores, ``AlarmDecider`` for the adaptive threshold and the smoothing), so a policy's
figures here are what an artifact with those settings gives through ``vigil score``; no training.

Each set is judged by the metric its own benchmark leads with: NAB's standard score, SKAB's point
F1, and event F1 for SMD and ECG (no point adjustment). Each policy's figure on a set is divided by
the best figure any policy reached there; policies are ranked by their worst set's ratio (a default
must hold on every set, not shine on one), then by the mean ratio.

    python benchmarks/sweep_alarms.py --scores results/scores --json results/sweep.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vigil.benchmarks.score_dump import ScoredStream, load_streams
from vigil.runtime.core import metrics
from vigil.runtime.core.report import json_text
from vigil.runtime.core.spec import AdaptiveThresholdSpec, LikelihoodSpec
from vigil.runtime.core.thresholds import ThresholdMethod, calibrate
from vigil.runtime.sensor.alarms import AlarmDecider
from vigil.runtime.sensor.evaluation import between_windows
from vigil.runtime.sensor.nab_score import PROFILES, corpus_score

SETS = ("nab", "skab", "smd", "ecg")
PRIMARY = {"nab": "nab_score_standard", "skab": "f1", "smd": "event_f1", "ecg": "event_f1"}


@dataclass(frozen=True)
class Policy:
    k: float
    hold: int
    adaptive: AdaptiveThresholdSpec | None = None
    consecutive: int = 1
    rearm: int = 0
    likelihood_z: float | None = None  # also the anomaly likelihood, at this z (training's
                                       # other likelihood settings)
    likelihood_level: int | None = 1000  # with it: its long-run level floors the threshold
                                         # after this many means (None: never)

    @property
    def name(self) -> str:
        a = self.adaptive
        return (f"k={self.k:g} hold={self.hold} rearm={self.rearm}"
                + (f" adaptive(memory={a.memory}, warmup={a.warmup}, {a.rule})" if a else "")
                + (f" likelihood(z={self.likelihood_z:g}"
                   f"{f', level after {self.likelihood_level}' if self.likelihood_level else ''})"
                   if self.likelihood_z is not None else ""))

    def likelihood(self, validation_scores: np.ndarray) -> LikelihoodSpec | None:
        """The anomaly likelihood as training would write it for these held-out scores."""
        if self.likelihood_z is None:
            return None
        from vigil.training.train_sensor import CalibrationOptions

        level = ({"likelihood_level": False} if self.likelihood_level is None
                 else {"likelihood_level_warmup": self.likelihood_level})
        spec = CalibrationOptions(likelihood_z=self.likelihood_z, **level).likelihood_spec(
            validation_scores)
        return None if spec is None else LikelihoodSpec(**spec)


def grid() -> list[Policy]:
    policies = []
    for k, hold, rearm in itertools.product((3.0, 4.0, 5.0, 6.0, 8.0), (0, 10, 50),
                                            (0, 50, 100, 200)):
        policies.append(Policy(k, hold, rearm=rearm))
        if hold != 10 or rearm not in (0, 50, 100):
            continue
        for memory, z in ((1000, 4.0), (1000, 6.0), (1000, 8.0), (1000, 12.0), (300, 8.0),
                          (3000, 8.0)):
            for warmup in (200, 1000):  # scores learned before it applies
                if warmup <= memory:
                    policies.append(Policy(k, hold, AdaptiveThresholdSpec(memory, warmup, z),
                                           rearm=rearm))
        if k != 5.0:  # the quantile rule was swept later, at the chosen k
            continue
        for memory, quantile, factor in itertools.product((1000, 3000), (0.99, 0.995, 0.999),
                                                          (1.5, 2.0, 3.0)):
            spec = AdaptiveThresholdSpec(memory, 1000, quantile=quantile, factor=factor)
            policies.append(Policy(k, hold, spec, rearm=rearm))
            if (memory, quantile, factor, rearm) == (1000, 0.99, 2.0, 0):  # and the likelihood,
                for z in (3.5, 4.27, 5.0, 6.0):                           # swept last
                    policies.append(Policy(k, hold, spec, rearm=rearm, likelihood_z=z))
    # around the default, with the likelihood: k, hold and re-arm again (added 2026-12-05, after
    # the held-out windows stopped scoring training rows: docs/quality.md, "Alarm policy swept
    # again")
    spec = AdaptiveThresholdSpec(1000, 1000, quantile=0.99, factor=2.0)
    for k, hold, rearm, z in itertools.product((4.0, 4.5, 5.0, 5.5, 6.0), (0, 10, 20, 50),
                                               (0, 50, 100), (4.27, 5.0)):
        policies.append(Policy(k, hold, spec, rearm=rearm, likelihood_z=z))
    policies.append(Policy(5.0, 10, spec, likelihood_z=4.27, likelihood_level=None))
    unique: dict[str, Policy] = {}
    for policy in policies:
        unique.setdefault(policy.name, policy)
    return list(unique.values())


def row_decisions(stream: ScoredStream, policy: Policy, base: float | None = None,
                  decider_class: type[AlarmDecider] = AlarmDecider
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-row (alarms, episode starts) as ``vigil score`` gives them (rows between windows take
    the last window's alarm), and the re-arm time in rows; ``base``: the calibrated threshold
    (default: mean + ``policy.k`` std of the held-out normal scores); ``decider_class``: the
    runtime's decider, or a variant of it an exploration measures."""
    ends = np.flatnonzero(~np.isnan(stream.scores))
    if base is None:
        base = calibrate(ThresholdMethod.GAUSSIAN, stream.validation_scores, k=policy.k).value
    decider = decider_class(policy.consecutive, policy.hold, policy.adaptive, policy.rearm,
                            policy.likelihood(stream.validation_scores))
    rows = np.zeros(len(stream.scores), dtype=bool)
    starts = np.zeros(len(stream.scores), dtype=bool)
    _, rows[ends], starts[ends] = decider.run(stream.scores[ends], base)
    stride = int(ends[1] - ends[0]) if len(ends) > 1 else 1
    if stride > 1:
        rows = between_windows(stream.scores, rows)
    return rows, starts, policy.rearm * stride


def row_alarms(stream: ScoredStream, policy: Policy) -> np.ndarray:
    return row_decisions(stream, policy)[0]


def evaluate(benchmark: str, streams: list[ScoredStream], policy: Policy) -> dict:
    decided = [row_decisions(s, policy) for s in streams]
    gap = decided[0][2] if decided else 0
    return figures_of(benchmark, streams, [(a, starts) for a, starts, _ in decided], gap)


def figures_of(benchmark: str, streams: list[ScoredStream],
               decided: list[tuple[np.ndarray, np.ndarray]], gap: int) -> dict:
    """Point and event figures (and NAB's scores on NAB) of each stream's per-row (alarms,
    episode starts); ``gap``: the re-arm time in rows, for the event metrics."""
    tested = [(a[s.test_start:], s.labels[s.test_start:]) for (a, _), s in zip(decided, streams)]
    c = metrics.counts(np.concatenate([a for a, _ in tested]),
                       np.concatenate([b for _, b in tested]))
    result = {"f1": c.f1, "precision": c.precision, "recall": c.recall,
              "event_f1": metrics.pooled_event_f1(tested, gap)}
    if benchmark == "nab":
        pairs = [(starts, s.labels) for (_, starts), s in zip(decided, streams)]
        for profile in PROFILES:
            result[f"nab_score_{profile}"] = corpus_score(pairs, PROFILES[profile])["score"]
    return result



def figure_line(bench: str, streams: list[ScoredStream], decided, label: str,
                width: int = 60) -> str:
    """One exploration line: ``label`` and the set's leading figure (NAB's other profiles too)
    for each stream's ``(alarms, episode starts, re-arm rows)``."""
    f = figures_of(bench, streams, [(a, s) for a, s, _ in decided], decided[0][2])
    nab = (f" ({f['nab_score_low_fp']:.1f} / {f['nab_score_low_fn']:.1f})" if bench == "nab"
           else "")
    return f"{bench:4s} {label:<{width}} {PRIMARY[bench]} {f[PRIMARY[bench]]:.3f}{nab}"


def sweep(sets: dict[str, list[ScoredStream]], policies: list[Policy], log=print) -> list[dict]:
    rows: list[dict] = []  # one per policy: its settings and each set's figures
    for policy in policies:
        started = time.perf_counter()
        figures = {name: evaluate(name, streams, policy) for name, streams in sets.items()}
        rows.append({"policy": policy.name, "k": policy.k, "hold": policy.hold,
                     "rearm": policy.rearm, "likelihood_z": policy.likelihood_z,
                     "adaptive": None if policy.adaptive is None else vars(policy.adaptive),
                     "figures": figures})
        log(f"  {policy.name:<58} " + "  ".join(
            f"{name} {figures[name][PRIMARY[name]]:.3f}" for name in sets)
            + f"  ({time.perf_counter() - started:.1f} s)")
    best = {name: max(r["figures"][name][PRIMARY[name]] for r in rows) for name in sets}
    for r in rows:
        ratios = {name: r["figures"][name][PRIMARY[name]] / best[name] if best[name] > 0 else 0.0
                  for name in sets}
        r.update(ratios=ratios, objective=float(np.mean(list(ratios.values()))),
                 worst=float(min(ratios.values())))
    return sorted(rows, key=lambda r: (-r["worst"], -r["objective"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scores", type=Path, required=True,
                        help="a folder of <set>.npz written by the benchmarks' --save-scores")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--top", type=int, default=10, help="policies to print")
    args = parser.parse_args(argv)
    sets = {}
    for name in SETS:
        path = args.scores / f"{name}.npz"
        if path.is_file():
            benchmark, streams = load_streams(path)
            if benchmark != name:
                parser.error(f"{path} holds scores of {benchmark!r}, not {name!r}")
            sets[name] = streams
    if not sets:
        parser.error(f"--scores {args.scores} holds none of {[f'{n}.npz' for n in SETS]}; run "
                     "the quality benchmarks with --save-scores DIR/<set>.npz first")
    rows = sweep(sets, grid())
    result = {"sets": list(sets), "primary_metric": {n: PRIMARY[n] for n in sets},
              "ranking": "by the worst set's ratio of the policy's primary figure to the best "
                         "policy's on that set, then by the mean ratio",
              "policies": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json_text(result))
    print("\nbest policies (worst set ratio, mean ratio, figures):")
    for r in rows[:args.top]:
        print(f"  {r['worst']:.3f} {r['objective']:.3f}  {r['policy']:<58} " + "  ".join(
            f"{n} {r['figures'][n][PRIMARY[n]]:.3f}" for n in sets))
    static = [r for r in rows if r["adaptive"] is None]
    print(json.dumps({"best": rows[0]["policy"], "best_static": static[0]["policy"] if static
                      else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
