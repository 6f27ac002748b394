"""A health report of a running scorer, for watchdogs and dashboards.

``HealthReporter`` writes one JSON object describing the run: items in, scored, skipped, dropped,
reconnects, lines written and lost, the last error, seconds since the input last moved, uptime and
resident memory. It is rewritten every ``interval_s`` seconds by a background thread, so it stays
current while the input stalls, and once more when the run stops (``status`` becomes
``stopped`` and ``stopped`` says why). A file is replaced atomically (temporary file + rename): a
reader sees the previous report or the new one, never half of one. ``"-"`` writes each report as
one line on standard error instead. A report that cannot be written is logged; it never ends the
run.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from .output import hold_lock_beside, strict_json, write_atomically

log = logging.getLogger("vigil")

HEALTH_VERSION = 1
IDLE_RESOLUTION_S = 0.5  # how often the input count is looked at between reports
DEFAULT_INTERVAL_S = 10.0


def process_identity(pid: int | str = "self") -> dict | None:
    """What tells process ``pid`` apart from any other, on Linux: the boot, the process-ID
    namespace and the process's start time (a reused process ID starts later); None where
    /proc cannot tell (another system, the process gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            # the command name (field 2) may hold spaces and parentheses: fields after the last ")"
            start = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot = handle.read().strip()
        namespace = os.readlink(f"/proc/{pid}/ns/pid")
    except (OSError, ValueError, IndexError):
        return None
    return {"boot_id": boot, "pid_namespace": namespace, "start_ticks": start}


def rss_bytes() -> int | None:
    """This process's resident memory now (Linux /proc), or None where it cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HealthReporter:
    """Writes health reports of a run to ``target`` (a file path, or ``"-"`` for stderr lines).

    The scorer calls ``start`` with a function returning its current counts, then ``stop`` when it
    ends. ``snapshot()`` gives the current report without writing it.

    Args:
        target: the health file, ``"-"``, or ``None`` for no file (reports go only to
            ``mirror``, e.g. an MQTT topic).
        interval_s: seconds between reports while the run goes on.
        model: the artifact (path and sha256 are put in each report), optional.
        exclusive: hold the file's lock (``PATH.lock``) until ``stop``, refusing (ValueError) a
            file another run reports to: two scorers given one file by a configuration mistake
            wrote over each other's reports, and a watchdog read the live one's for the dead one
            (review r5).
    """

    def __init__(self, target: str | os.PathLike | None, interval_s: float = DEFAULT_INTERVAL_S,
                 model: Any = None, exclusive: bool = False) -> None:
        if isinstance(interval_s, bool) or not isinstance(interval_s, (int, float)) \
                or not 0 < interval_s <= 86400:
            raise ValueError(f"`health_interval` must be a number of seconds in (0, 86400]; "
                             f"received {interval_s!r}")
        self.to_stderr = isinstance(target, str) and target == "-"
        self.path = None if self.to_stderr or target is None else Path(target)
        if self.path is not None:
            if self.path.is_dir():
                raise ValueError(f"`health` must be a file path (or - for stderr); "
                                 f"{str(self.path)!r} is a folder")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise ValueError(f"`health` {str(self.path)!r}: its folder cannot be made "
                                 f"({error.strerror or error})") from None
        path = str(self.path) if self.path is not None else None
        self._lock_fd = hold_lock_beside(path, lambda lock: (
            f"--health {path!r} is written by another run (it holds {lock!r}): two scorers "
            f"writing one health file hide each other's state from the watchdog; give each "
            f"its own --health file")) if exclusive and path is not None else None
        self.interval_s = float(interval_s)
        self._model = ({"model": str(getattr(model, "path", "")),
                        "model_sha256": getattr(model, "sha256", None)} if model is not None
                       else {})
        self._started_wall = _now()
        self._identity = process_identity()  # lets health-check tell a killed scorer at once
        self._started = time.monotonic()
        self._counts: Callable[[], dict] = dict
        self._input_key: str | None = None
        self._kind: str | None = None    # sensor or image, once named
        self._source: str | None = None
        self._last_input: Any = None
        self._last_input_change = self._started
        self._status = "starting"
        self._stopped: str | None = None      # why the run ended, once it has
        self._final_error: str | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_error: str | None = None
        self.reports = 0
        self.mirror: Callable[[dict], None] | None = None   # also hands each report on (MQTT)
        self.sections: dict[str, Callable[[], dict]] = {}   # more parts of the report by name

    def connecting(self, kind: str, source: str) -> None:
        """Report ``status: connecting`` while a live source is being opened (it may take many
        attempts); ``start`` follows once it is open."""
        with self._lock:
            self._kind, self._source, self._status = kind, source, "connecting"
        self.write()
        self._start_thread()

    def start(self, kind: str, source: str, counts: Callable[[], dict], input_key: str) -> None:
        """Begin reporting: ``counts()`` returns the run's counters; ``input_key`` names the one
        that counts inputs (its last change gives ``idle_s``)."""
        with self._lock:
            self._kind, self._source, self._counts, self._input_key = kind, source, counts, input_key
            self._status = "running"
        self.write()
        self._start_thread()

    def _start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="vigil-health")
            self._thread.start()

    def stop(self, stopped: str, last_error: str | None = None) -> None:
        """Write the final report (``status: stopped``, ``stopped`` says why) and end the thread."""
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            self._status, self._stopped, self._final_error = "stopped", stopped, last_error
        self.write()
        if self.mirror is None:  # else its publisher writes the report once more when drained,
            self.release()       # and lets the file go then (review d1)

    def release(self) -> None:
        """Let another run write the file (``stop`` does it, and so does the process's end)."""
        fd = getattr(self, "_lock_fd", None)  # (None too where __init__ failed)
        if fd is not None:
            self._lock_fd = None
            os.close(fd)

    def __del__(self) -> None:
        self.release()

    def stop_after(self, stopped: str, failure: BaseException | None) -> None:
        """``stop`` as a run ends: with ``stopped`` where it ended of itself, ``error`` naming
        ``failure`` where one ended it, ``output_closed`` where the reader of its standard output
        went away (the next command of a pipeline exited: not an error of the run's own)."""
        if isinstance(failure, BrokenPipeError):
            self.stop("output_closed", "standard output's reader went away (the next command of "
                                       "the pipeline exited)")
        elif failure is not None:
            self.stop("error", f"{type(failure).__name__}: {failure}")
        else:
            self.stop(stopped)

    def snapshot(self) -> dict:
        """The current report."""
        with self._lock:
            counts = dict(self._counts())
            now = time.monotonic()
            self._note_input(counts, now)
            last_error = counts.pop("last_error", None)
            if self._final_error:
                last_error = self._final_error
            rss = rss_bytes()
            report = {
                "vigil_health": HEALTH_VERSION,
                "status": self._status,
                "stopped": self._stopped,
                "kind": self._kind,
                "source": self._source,
                **self._model,
                "pid": os.getpid(),
                "process": self._identity,
                "started": self._started_wall,
                "updated": _now(),
                "uptime_s": round(now - self._started, 3),
                **counts,
                "idle_s": round(now - self._last_input_change, 3),
                "last_error": last_error,
                "rss_mb": round(rss / 2**20, 1) if rss is not None else None,
            }
        for name, part in self.sections.items():
            report[name] = part()
        return report

    def write(self) -> None:
        """Write the current report now; a failure is logged, never raised."""
        try:
            report = self.snapshot()
            if self.mirror is not None:
                self.mirror(report)
            if self.to_stderr:
                print(strict_json({"health": report}), file=sys.stderr, flush=True)
            elif self.path is not None:
                write_atomically(self.path, strict_json(report) + "\n")
            self.reports += 1
            if self._write_error is not None:
                log.warning("health file %s is writable again", self.path)
                self._write_error = None
        except Exception as error:  # a health report must never take the run down
            # said once per cause: the temporary file's name in the error changes every time
            why = getattr(error, "strerror", None) or str(error)
            message = f"health report {self.path or 'stderr'} could not be written: {why}"
            if message != self._write_error:
                log.warning("%s (said again only if the cause changes)", message)
            self._write_error = message

    def _note_input(self, counts: dict, now: float) -> None:
        """Remember when the input count last moved (under the lock)."""
        value = counts.get(self._input_key) if self._input_key else None
        if value != self._last_input:
            self._last_input, self._last_input_change = value, now

    def _loop(self) -> None:
        # the input count is looked at every IDLE_RESOLUTION_S between reports, so `idle_s` is
        # right to that, not to a whole interval
        next_report = time.monotonic() + self.interval_s
        while not self._wake.wait(max(0.0, min(IDLE_RESOLUTION_S,
                                               next_report - time.monotonic()))):
            now = time.monotonic()
            if now >= next_report:
                self.write()
                next_report = now + self.interval_s
            else:
                with self._lock:
                    self._note_input(dict(self._counts()), now)


# How a run ends that is no fault: its source's end, or Ctrl-C/SIGTERM. A watchdog that restarted
# it while it still closes its outputs (an MQTT broker acknowledging the last results) would score
# a finished source again.
FINISHED = ("end", "interrupted")


@dataclass(frozen=True)
class HealthVerdict:
    """One reading of a health file: ``problem`` (None when healthy) and, where the run has
    finished (stopped at its source's end or on request: no fault, nothing to restart), why it
    stopped (``finished``: the report's ``stopped``)."""

    problem: str | None
    finished: str | None = None


def health_verdict(path: str | os.PathLike, max_age_s: float = 60.0,
                   max_idle_s: float | None = None,
                   max_unscored: int | None = None) -> HealthVerdict:
    """What is wrong with the run a health file describes, and whether it finished, from one
    reading of the file.

    For watchdogs (a container's HEALTHCHECK, a systemd timer): the file must exist and parse,
    have been rewritten within ``max_age_s`` seconds (the reporter rewrites it every interval, so
    an old file means a hung or dead scorer), say ``running`` or ``connecting`` (or ``stopped``
    at its source's end or on request: a finished run is no fault, however old its final
    report), with
    ``max_idle_s``, show input that moved within that many seconds, and with
    ``max_unscored``, a sensor run skipping no more rows than that in a row (a dead column
    leaves a scorer alive that detects nothing), and a camera run no more frames (a camera whose
    every frame arrives damaged).
    """
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        updated = datetime.fromisoformat(report["updated"].replace("Z", "+00:00"))
        if updated.tzinfo is None:  # the reporter writes UTC with its zone; a bare time is UTC
            updated = updated.replace(tzinfo=timezone.utc)
    except FileNotFoundError:
        return HealthVerdict(f"no health file at {path} (is the scorer running with --health "
                             f"{path}?)")
    except (KeyError, TypeError):
        return HealthVerdict(f"health file {path} is not a Vigil health report: expected a JSON "
                             f"object with an 'updated' time, as `vigil score --health {path}` "
                             f"writes")
    except (OSError, ValueError, AttributeError) as error:
        return HealthVerdict(f"health file {path} cannot be read as a Vigil health report: "
                             f"{error}")
    if report.get("status") in ("running", "connecting"):
        gone = _process_gone(report)
        if gone is not None:
            return HealthVerdict(f"{gone}; health file {path} still says {report['status']!r}")
    if (report.get("status") == "stopped" and report.get("stopped") == "end"
            and report.get("kind") == "sensor" and report.get("source") == "-"):
        # a live stream's end is its feeder's: exited, or its output closed (a logger crashed);
        # called finished, a unit's watchdog left the device unwatched for good
        return HealthVerdict(f"its standard input ended after {report.get('rows_in')} rows: the "
                             f"process feeding it exited or closed its output; restart the "
                             f"pipeline (a systemd unit: Restart=always)")
    if report.get("status") == "stopped" and report.get("stopped") in FINISHED:
        # it ended as asked or at its source's end (and may still be closing outputs): its final
        # report stays as it was written, so its age says nothing
        return HealthVerdict(None, finished=str(report["stopped"]))
    age = (datetime.now(timezone.utc) - updated).total_seconds()
    if age > max_age_s:
        return HealthVerdict(f"health file {path} was last rewritten {age:.0f} s ago (over "
                             f"{max_age_s:g} s)")
    if age < -max_age_s:  # a live scorer rewrites it with the corrected clock within an interval
        return HealthVerdict(f"health file {path} was last rewritten {-age:.0f} s in the future "
                             f"(its 'updated' time is {report['updated']}): the clock was set "
                             f"back since, and the scorer has not rewritten it with the new time")
    if report.get("status") not in ("running", "connecting"):
        return HealthVerdict(f"the run is {report.get('status')!r} (stopped: "
                             f"{report.get('stopped')!r}, last error: "
                             f"{report.get('last_error')!r})")
    idle = report.get("idle_s")
    if isinstance(idle, (int, float)):
        idle += max(0.0, age)  # idle when written, and since
    if max_idle_s is not None and isinstance(idle, (int, float)) and idle > max_idle_s:
        return HealthVerdict(f"no input for {idle:.0f} s (over {max_idle_s:g} s)")
    unscored = report.get("rows_unscored")
    if (max_unscored is not None and type(unscored) is int
            and unscored >= max_unscored):
        return HealthVerdict(f"no window scored for the last {unscored} rows (at least "
                             f"{max_unscored}): rows arrive but none completes a window "
                             f"(last error: {report.get('last_error')!r})")
    frames = report.get("frames_unscored")
    if max_unscored is not None and type(frames) is int and frames >= max_unscored:
        return HealthVerdict(f"no frame scored for the last {frames} frames (at least "
                             f"{max_unscored}): frames arrive but none can be scored "
                             f"(last error: {report.get('last_error')!r})")
    return HealthVerdict(None)


def _process_gone(report: dict) -> str | None:
    """Why the scorer a report describes is known to have ended (killed, crashed, out of memory)
    before it could write a final report, or None where it runs or this process cannot tell:
    only a check from the same boot and process-ID namespace can (a container's own health
    check, a systemd timer on the same machine; not a sidecar with its own namespace)."""
    recorded, pid = report.get("process"), report.get("pid")
    here = process_identity()
    if (not isinstance(recorded, dict) or type(pid) is not int or pid <= 0 or here is None
            or recorded.get("boot_id") != here["boot_id"]
            or recorded.get("pid_namespace") != here["pid_namespace"]):
        return None
    now = process_identity(pid)
    if now is not None and now["start_ticks"] == recorded.get("start_ticks"):
        return None
    return (f"the scorer (pid {pid}) is no longer running: it ended without a final report "
            "(killed, crashed or out of memory)")
