"""The result-line format of `vigil score --jsonl` and `vigil batch`, as readers tell it.

One JSON object per line. A sensor line gives its window's last data row as ``index``, a frame
line its frame number as ``frame``; each names its ``source`` and carries ``score`` and
``anomaly`` (null on a skipped line, with ``skipped`` saying why) and the decision's parts
(``DECISION_KEYS``). ``streaming.Result.to_json`` writes a sensor line, ``camera.scoring`` a
frame line; a reader of a results file (appending to one, resuming a batch) asks this module
what a line is.
"""

from __future__ import annotations

POSITION_KEYS = ("index", "frame")  # a sensor line's data row; a frame line's frame number
# what an alarm decision is made of: a resumed batch's lines must decide as the earlier run's
DECISION_KEYS = ("anomaly", "above_threshold", "alarm_start", "threshold", "surprise")


def is_result_line(record: object) -> bool:
    """Whether a parsed line is a result line: it names its source (lines of older releases
    name their window or frame and carry a score)."""
    return isinstance(record, dict) and (
        "source" in record or "score" in record and position_key(record) is not None)


def position_key(record: dict) -> str | None:
    """``"index"`` for a sensor line, ``"frame"`` for a frame line, None for neither."""
    return next((key for key in POSITION_KEYS if key in record), None)
