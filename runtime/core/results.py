"""The result-line format of `vigil score --jsonl` and `vigil batch`, as readers tell it.

One JSON object per line. A sensor line gives its window's last data row as ``index``, a frame
line its frame number as ``frame``; each names its ``source`` and carries ``score`` and
``anomaly`` (null on a skipped line, with ``skipped`` saying why) and the decision's parts
(``DECISION_KEYS``). Lines are written and read here only: ``result_line`` starts one,
``skip_line`` or ``decide_line`` ends it (``streaming.Result.to_json`` and ``camera.scoring`` add
their kind's own fields), and a reader of a results file (appending to one, resuming a batch)
asks ``is_result_line`` and ``position_key`` what a line is.
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


def result_line(key: str, position: int, source: str | None, **context: object) -> dict:
    """A line's start: its position (``key`` one of ``POSITION_KEYS``), its source where known,
    and what was known of it before scoring (fields that are None or False are left out)."""
    if key not in POSITION_KEYS:
        raise ValueError(f"key must be one of {POSITION_KEYS}, got {key!r}")
    line: dict = {key: position}
    if source is not None:
        line["source"] = source
    line.update(present(context))
    return line


def skip_line(line: dict, reason: str) -> dict:
    """End a line that was not scored: null score and decision, and why."""
    line.update(score=None, anomaly=None, skipped=reason)
    return line


def decide_line(line: dict, score: float, anomaly: bool, **decision: object) -> dict:
    """End a scored line: its score, its decision and the fields every scored line of its kind
    carries (written even when false or empty, so readers need not guess a default)."""
    line.update(score=score, anomaly=anomaly, **decision)
    return line


def present(fields: dict) -> dict:
    """The fields that say something: a line leaves out None and False (a flag not raised)."""
    return {k: v for k, v in fields.items() if v is not None and v is not False}
