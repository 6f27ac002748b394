"""Exploration: how long a score must stay above the threshold before it alarms (``consecutive``)
and how long an alarm holds (``hold``), on the four sensor sets' saved scores.

Each variant is the library's default alarm policy (the adaptive threshold, the anomaly
likelihood and its level, no re-arm) with another ``consecutive`` and ``hold``, applied with the
runtime's own alarm code (``sweep_alarms.row_decisions``), so a line is what an artifact trained
with ``--consecutive C --hold H`` gives through ``vigil score``. The default (1 and 10) stays: the
docs/quality.md's "Alarm persistence" has the figures and why.

    python benchmarks/explore_persistence.py --scores DIR --distances CACHE
"""

from __future__ import annotations

import sys
from dataclasses import replace

from vigil.benchmarks.explore_neighbours import DEFAULT_POLICY, saved_sets, saved_sets_parser
from vigil.benchmarks.sweep_alarms import Policy, figure_line, row_decisions

VARIANTS = ((1, 10), (2, 10), (3, 10), (4, 10), (1, 5), (1, 20), (2, 5), (2, 20))


def policies() -> list[tuple[str, Policy]]:
    """(label, policy) for each (consecutive, hold), the default first."""
    return [(f"consecutive {c}, hold {h}" + (" (the default)" if (c, h) == (
        DEFAULT_POLICY.consecutive, DEFAULT_POLICY.hold) else ""),
             replace(DEFAULT_POLICY, consecutive=c, hold=h)) for c, h in VARIANTS]


def main(argv: list[str] | None = None) -> int:
    args = saved_sets_parser(__doc__).parse_args(argv)
    for bench, streams in saved_sets(args.scores, args.distances):
        for label, policy in policies():
            decided = [row_decisions(s, policy) for s in streams]
            print(figure_line(bench, streams, decided, label, width=36), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
