"""Stopping a run at a safe point: SIGTERM and Ctrl-C never cut a row, a frame or a line in two.

A supervisor stops a service with SIGTERM; a person with Ctrl-C. Either may arrive while a row is
half counted or a result line half written. ``StopSignals`` installs handlers that only *record*
the request; scoring loops call ``check()`` between items, where stopping loses nothing. Around a
call that may block for long (waiting for the next line on stdin, the next live frame, a
pause between connection attempts) the loop enters ``waiting()``: a signal then stops the wait at
once, since nothing is in flight there. Only Python's own waits go in ``waiting()``, not an
extension's call: Python runs pending handlers within one (``PyObject_Str`` does, first), and
OpenCV's binding, given the exception our handler raised there, crashed the process (SIGSEGV).
Such a call is followed by ``check()``. (One exception: `vigil batch --ray` waits for Ray's
next result in ``waiting()``; Ray's ``get`` is made to be interrupted by Ctrl-C.) A result line
being written to a stalled reader is ``writing()``: the first signal lets it finish (the run
then stops at the next safe point and writes what is pending), a second one abandons it; each
line to a pipe is one atomic write, so none is cut.

Where no ``StopSignals`` is active, ``check()`` and ``waiting()`` do nothing and Python's
default behaviour applies. Its handlers are installed only from the main thread, where Python
runs them; ``check()`` raises in whichever thread calls it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from types import FrameType
from typing import Any, Callable, Iterator


def _terminals() -> tuple[int, ...]:
    """Which of standard output and error are a terminal (asked before a hang-up: after it,
    asking may fail as writing does)."""
    found = []
    for fd in (1, 2):
        try:
            if os.isatty(fd):
                found.append(fd)
        except OSError:
            pass
    return tuple(found)


def _leave_a_hung_up_terminal(terminals: tuple[int, ...]) -> None:
    """After SIGHUP, standard output and error that were a terminal now hung up (its writes fail
    with EIO, which ended a stopped run with exit 1) write to /dev/null; a terminal still there
    (SIGHUP sent by `kill`), pipes and files stay."""
    for fd in terminals:
        try:
            os.write(fd, b"")  # nothing written; a hung-up terminal refuses even that
        except OSError as error:
            if error.errno != errno.EIO:
                continue
            try:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)
            except OSError:
                pass


# what signal.signal takes and returns: a function, SIG_DFL or SIG_IGN, or None (a handler that
# was not installed from Python)
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class StopSignals:
    """SIGTERM, SIGINT and SIGHUP as a stop request, honoured at safe points.

    Use as a context manager around a run: the previous handlers come back on exit, except
    SIGHUP's once one was received, which stays ignored. A second signal while the first is
    being honoured (the final lines are being written to a stalled reader, say) stops that too,
    at the next line boundary.
    """

    # SIGHUP too (a closed SSH session, a terminal gone): it ended a run with exit 129 and no
    # summary; where it is ignored (``nohup``), it stays ignored
    SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")

    def __init__(self) -> None:
        self.requested: str | None = None  # the name of the first signal received
        self.count = 0
        self._waiting = 0
        self._writing = 0
        self._previous: dict[int, _Handler] = {}
        self._hung_up = False

    def __enter__(self) -> StopSignals:
        self._terminals = _terminals()
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                number = getattr(signal, name, None)
                if number is not None and not (name == "SIGHUP"
                                               and signal.getsignal(number) == signal.SIG_IGN):
                    self._previous[number] = signal.signal(number, self._handle)
        _active.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _active.remove(self)
        for number, handler in self._previous.items():
            if self._hung_up and number == signal.SIGHUP:
                # a closed terminal's hang-up comes twice (the kernel's, then its shell's to its
                # jobs): the second, meeting the default action while the process exited, turned
                # a run the first had stopped cleanly into death by SIGHUP (8 of 70 loaded runs)
                handler = signal.SIG_IGN
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame) -> None:
        if number == getattr(signal, "SIGHUP", None):
            self._hung_up = True
            _leave_a_hung_up_terminal(self._terminals)
        self.count += 1
        self.requested = self.requested or signal.Signals(number).name
        if self._waiting or (self._writing and self.count > 1):
            raise KeyboardInterrupt(self.requested)

    def check(self) -> None:
        """Raise KeyboardInterrupt if a stop was requested (call between items)."""
        if self.requested:
            raise KeyboardInterrupt(self.requested)

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Within this block a signal interrupts at once (a blocking read with nothing in flight)."""
        self._waiting += 1
        try:
            self.check()
            yield
        finally:
            self._waiting -= 1

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Within this block only a repeated signal interrupts (a write to a stalled reader)."""
        self._writing += 1
        try:
            if self.count > 1:
                raise KeyboardInterrupt(self.requested)
            yield
        finally:
            self._writing -= 1


_active: list[StopSignals] = []


def current() -> StopSignals | None:
    """The innermost installed ``StopSignals``, if a run installed one."""
    return _active[-1] if _active else None


def check() -> None:
    """Raise KeyboardInterrupt at this safe point if a stop was requested."""
    stop = current()
    if stop is not None:
        stop.check()


@contextlib.contextmanager
def _within(state: str) -> Iterator[None]:
    stop = current()
    if stop is None:
        yield
        return
    with getattr(stop, state)():
        yield


def waiting() -> contextlib.AbstractContextManager[None]:
    """A blocking call during which a stop request interrupts at once."""
    return _within("waiting")


def writing() -> contextlib.AbstractContextManager[None]:
    """A write that only a repeated stop request interrupts."""
    return _within("writing")
