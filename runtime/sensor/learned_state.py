"""What a sensor stream learned while it ran, kept in a file across restarts (``vigil score
--state FILE``): the adaptive threshold's recent normal scores, the anomaly likelihood's means,
the running normalization's levels, and (timed rows) the window's last rows with its alarm and
episode, which a restart takes up where its first row follows within the time step's limit.

Without it a restarted scorer starts from the artifact alone and learns again: measured on a
stream noisier than training, scored unbroken it raised no alarm (its threshold had risen to
32.2), restarted at row 3,000 it raised 1,252 (the artifact's 7.26 again, until the warm-up).
The file is JSON, replaced atomically (temporary file + rename) every ``SAVE_INTERVAL_S`` seconds
while rows arrive and when a stream ends, so ``kill -9`` loses at most that much learning. It
names the model's sha256: a file written for another model, or one that cannot be read, is
warned of and learning starts afresh (the file is replaced at the next save). This module is the
one place that reads and writes it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timezone
from typing import Callable

from ..core.output import hold_lock_beside, write_atomically
from .detector import SensorDetector
from .stream_watch import REWARN_S
from .streaming import TAIL_PART, StreamingScorer

log = logging.getLogger("vigil")

STATE_FORMAT = "vigil-learned-state"
STATE_VERSION = 1
SAVE_INTERVAL_S = 60.0


class LearnedStateFile:
    """A ``--state`` file: ``restore`` a new stream's scorer from it, ``save`` a scorer into it.
    Between streams (the files of a folder, in name order) what the last one learned is handed
    to the next, so rotated logs are one stream. Saving never ends a run: a failure is logged."""

    def __init__(self, path: str | os.PathLike, detector: SensorDetector,
                 interval_s: float = SAVE_INTERVAL_S) -> None:
        """``path`` checked by ``check_state_path`` first; its folder is made if missing."""
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._lock_fd = _locked(self.path)
        self.detector = detector
        self.interval_s = interval_s
        self._latest: dict | None = None  # the parts last saved or restored
        self._read = False
        self._due = time.monotonic() + interval_s
        # why the last save failed (None: it did not); said at once and hourly while it lasts,
        # handed to ``on_problem`` at each failed save and ``on_saved`` at the next good one (a
        # run's summary and health report: a state that stopped saving on a full disk was said
        # once, and nothing a watchdog reads showed it)
        self.save_error: str | None = None
        self.on_problem: Callable[[str], None] | None = None
        self.on_saved: Callable[[], None] | None = None
        self._said_at: float | None = None

    def __del__(self) -> None:  # a dropped file lets the next run have it
        self.close()

    def close(self) -> None:
        """Let another run use the file (the process's end does it too)."""
        fd = getattr(self, "_lock_fd", None)  # (None too where __init__ failed)
        if fd is not None:
            os.close(fd)
            self._lock_fd = None

    def restore(self, scorer: StreamingScorer) -> None:
        """Give a new stream's ``scorer`` what was learned before it (from the file, the first
        time; then from the stream before it)."""
        if not self._read:
            self._read = True
            self._latest = self._load()
            first = True
        else:
            first = False
        if not self._latest:
            return
        try:
            restored, fresh = scorer.restore_learned(self._latest)
        except ValueError as error:
            log.warning("%s: %s; learning starts afresh (the file is replaced at the next save)",
                        self.path, error)
            self._latest = None
            return
        if first and "unchanged_readings" in restored:  # a restart: this process's own count
            scorer._take_restored_unchanged()
        if first and (restored or fresh):
            log.info("%s: continuing what was learned before: %s%s", self.path,
                     ", ".join(_learned_words(self._latest, name) for name in restored) or "none",
                     f"; {', '.join(fresh)} learned afresh (recorded under another rule, or not "
                     "recorded)" if fresh else "")
        if first and TAIL_PART not in self._latest and scorer.keeps_window_rows:
            # a state without the window's last rows: its first window is not continued
            log.info("%s: it keeps no rows of the stream's last window (a state written before "
                     "2026-12-07, or whose last rows were untimed or did not follow each other), "
                     "so this run's first %d rows fill a window afresh before the first score",
                     self.path, scorer.window - 1)

    def save_if_due(self, scorer: StreamingScorer) -> None:
        """``save`` once ``interval_s`` has passed since the last save."""
        if time.monotonic() >= self._due:
            self.save(scorer)

    def save(self, scorer: StreamingScorer) -> None:
        """Replace the file with what ``scorer`` learned (atomically)."""
        self._due = time.monotonic() + self.interval_s
        learned = scorer.learned_state()["parts"]
        if not learned:
            return
        # parts this run does not use (--no-likelihood) are kept for the runs that do; and the
        # next file of a folder continues from these whether or not the file can be written
        parts = {**(self._latest or {}), **learned}
        if TAIL_PART not in learned:  # rows of a stream before this one: never continued
            parts.pop(TAIL_PART, None)
        self._latest = parts
        record = {"format": STATE_FORMAT, "version": STATE_VERSION,
                  "model_sha256": self.detector.sha256,
                  "model_identity": self.detector.scoring_identity,
                  "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "parts": parts}
        try:
            # synced: a power cut must not leave an empty state (learning lost, a cold start)
            write_atomically(self.path, json.dumps(record, allow_nan=False), durable=True)
        except (OSError, ValueError) as error:
            self.save_error = (f"--state {self.path}: cannot be written "
                               f"({getattr(error, 'strerror', None) or error}); what this run "
                               f"learns is carried to the next file of this run, but lost at a "
                               f"restart")
            now = time.monotonic()
            if self._said_at is None or now - self._said_at >= REWARN_S:
                self._said_at = now
                log.warning("%s (said again hourly while it lasts)", self.save_error)
            if self.on_problem is not None:
                self.on_problem(self.save_error)
            return
        if self.save_error is not None:
            log.warning("--state %s: written again, after it could not be", self.path)
            self.save_error, self._said_at = None, None
            if self.on_saved is not None:
                self.on_saved()

    def _load(self) -> dict | None:
        """The file's parts, or None (absent; or warned of: unreadable, another model's)."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                record = json.load(handle)
        except FileNotFoundError:
            log.info("%s: no learned state yet; it is written every %g s and at the end",
                     self.path, self.interval_s)
            return None
        except (OSError, ValueError) as error:
            log.warning("%s: cannot be read as a learned state (%s); learning starts afresh "
                        "(the file is replaced at the next save)", self.path,
                        getattr(error, "strerror", None) or error)
            return None
        if not (isinstance(record, dict) and record.get("format") == STATE_FORMAT
                and record.get("version") == STATE_VERSION
                and isinstance(record.get("parts"), dict)):
            log.warning("%s: is not a version-%d Vigil learned state (expected a JSON object "
                        "with format %r and parts); learning starts afresh (the file is replaced "
                        "at the next save)", self.path, STATE_VERSION, STATE_FORMAT)
            return None
        identity = self.detector.scoring_identity
        if record.get("model_sha256") != self.detector.sha256:
            if identity is not None and record.get("model_identity") == identity:
                log.info("%s: learned by another export of this model (sha256 %s: the same .keras, "
                         "options and versions, which score alike); continued", self.path,
                         str(record.get("model_sha256"))[:12])
                return record["parts"]
            log.warning("%s: was learned by another artifact (sha256 %s, saved %s), not this one "
                        "(%s): another model, or one exported again with other options or "
                        "versions (or before a state recorded what an export keeps), whose "
                        "scores may differ: learning starts afresh and the file is replaced at "
                        "the next save; give each model its own --state file", self.path,
                        str(record.get("model_sha256"))[:12], record.get("saved_at"),
                        self.detector.sha256[:12])
            return None
        return record["parts"]


def check_state_path(path: str) -> None:
    """ValueError naming ``path`` unless a learned state can be kept there: not empty, not a
    folder, not standard input or output, and in a folder that exists and can be written (or
    can be made)."""
    if not path or not path.strip():
        raise ValueError("--state needs a file path (what the stream learned is read from it "
                         f"and written back); received {path!r}")
    if path == "-":
        raise ValueError("--state needs a file path (what the stream learned is read from it "
                         "and written back); received '-'")
    if os.path.isdir(path) or path.endswith((os.sep, "/")):
        raise ValueError(f"--state {path!r} is a folder; give a file in it, e.g. "
                         f"{os.path.join(path, 'learned.json')!r}")
    if os.path.exists(path) and not os.path.isfile(path):  # /dev/stdout, a pipe: never a file
        raise ValueError(f"--state {path!r} is not a regular file (a device or a pipe); give "
                         "a file path")
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.isdir(existing):  # the nearest folder that is there, to make the rest in
        parent = os.path.dirname(existing)
        if parent == existing or os.path.exists(existing):
            raise ValueError(f"--state {path!r}: its folder {folder!r} cannot be made "
                             f"({existing!r} is a file); give a path in a folder")
        existing = parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--state {path!r}: the folder {existing!r} cannot be written by this "
                         "user; give a path in a folder it can write (a service's state "
                         "folder, e.g. /var/lib/vigil/NAME/learned.json)")
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        raise ValueError(f"--state {path!r} cannot be read and written by this user; fix its "
                         "permissions or give another path")
    newer = _newer_version(path)
    if newer is not None:  # a rollback must not replace what a newer release learned
        raise ValueError(f"--state {path!r} was written by a newer Vigil (learned-state version "
                         f"{newer}; this one reads {STATE_VERSION}): upgrade Vigil, or give "
                         f"another --state file (this one is kept as it is)")


def _newer_version(path: str) -> int | None:
    """The version of a learned-state file newer than this release reads, or None."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None  # absent or unreadable: said when it is read
    version = record.get("version") if isinstance(record, dict) else None
    if (isinstance(record, dict) and record.get("format") == STATE_FORMAT
            and isinstance(version, int) and not isinstance(version, bool)
            and version > STATE_VERSION):
        return version
    return None


def _learned_words(parts: dict, name: str) -> str:
    part = parts[name]
    if name == "running_normalization":
        return f"running normalization ({part['learned']} rows)"
    if name == "anomaly_likelihood":
        return f"anomaly likelihood ({len(part['means']['ring'])} means)"
    if name == "unchanged_readings":
        return f"how long each reading has stood (the longest {max(part['rows'])} rows)"
    if name == TAIL_PART:
        return (f"the window's last {len(part['rows'])} rows, its alarm and episode (continued "
                f"where the next row follows within the time step's limit)")
    return f"adaptive threshold ({len(part['recent']['ring'])} recent normal scores)"


def _locked(path: str) -> int | None:
    """``path``'s lock, held for the run: two streams sharing one state file overwrote each
    other's learning without a word."""
    return hold_lock_beside(path, lambda lock: (
        f"--state {path!r} is used by another run (it holds {lock!r}): two streams sharing one "
        f"state file overwrite each other's learning; give each stream its own --state file"))
