"""--log-json with what C libraries print to stderr themselves (libpng's warnings, libjpeg's):
wrapped into JSON lines of logger "native", never text among the JSON, never lost at the end,
and never in the way of Python's own fatal-error output."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import time

import cv2
import numpy as np

from image_fixtures import normal_frame


def png_with_a_bad_text_chunk(path) -> None:
    """A valid PNG whose tEXt chunk fails its CRC: OpenCV decodes it, and libpng prints
    "libpng warning: tEXt: CRC error" to stderr itself (no setting of OpenCV turns it off)."""
    ok, encoded = cv2.imencode(".png", normal_frame(np.random.default_rng(0)))
    data = bytes(encoded)
    after_header = 8 + 8 + 13 + 4  # signature, IHDR's length, type, 13 bytes and CRC
    text = b"Comment\x00made by a scanner"
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text + struct.pack(">I", 12345)
    path.write_bytes(data[:after_header] + chunk + data[after_header:])


def run_cli(*arguments, stderr_path, cwd) -> int:
    with open(stderr_path, "wb") as stderr:
        return subprocess.run([sys.executable, "-m", "vigil", *map(str, arguments)], cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=stderr, timeout=300).returncode


def test_libpng_warnings_are_json_lines_under_log_json(tiny_image_artifact, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000.png"), normal_frame(np.random.default_rng(1)))
    png_with_a_bad_text_chunk(folder / "001.png")
    code = run_cli("--log-json", "score", tiny_image_artifact, folder, "--jsonl",
                   tmp_path / "out.jsonl", stderr_path=tmp_path / "err", cwd=tmp_path)
    lines = (tmp_path / "err").read_text().splitlines()
    assert code == 0, lines
    entries = [json.loads(line) for line in lines]  # every line is JSON: none is libpng's text
    native = [e for e in entries if e.get("logger") == "native"]
    assert [e["message"] for e in native] == ["libpng warning: tEXt: CRC error"]
    assert native[0]["level"] == "warning" and native[0]["time"].endswith("Z")
    assert any("summary" in e for e in entries)  # the run's own lines still come out
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2
    # without --log-json, the library's text is left as it is
    code = run_cli("score", tiny_image_artifact, folder, "--jsonl", tmp_path / "out2.jsonl",
                   stderr_path=tmp_path / "err2", cwd=tmp_path)
    assert code == 0 and "libpng warning: tEXt: CRC error" in (tmp_path / "err2").read_text()


PUMP_DRAIN_S = 30  # the longest a loaded machine may take to start and drain the pump

SCRIPT = textwrap.dedent("""
    import faulthandler, logging, os, sys  # noqa: E401
    from vigil.cli.log_format import JsonFormatter, native_lines_as_json
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    with native_lines_as_json():
        logging.getLogger("vigil").warning("our own line")
        os.write(2, b"first native line\\nsecond, without its end")  # a C library's writes
        if sys.argv[1] == "crash":  # faulthandler enabled at start-up (PYTHONFAULTHANDLER)
            faulthandler._sigsegv()
        if sys.argv[1] == "abort":  # a C library's last words before it aborts
            os.write(2, b"\\nmalloc(): corrupted top size\\n")
            os.abort()
    os.write(2, b"after: as it came\\n")
""")


def run_script(tmp_path, how: str, expect: str = "", **options) -> tuple[int, list[str]]:
    """The script's exit status and stderr lines, once they hold ``expect``: after a crash the
    pump writes the last lines after the process is gone (within ``PUMP_DRAIN_S``)."""
    script = tmp_path / "s.py"
    script.write_text(SCRIPT)
    with open(tmp_path / f"{how}.err", "wb") as stderr:
        done = subprocess.run([sys.executable, str(script), how], stderr=stderr, timeout=60,
                              **options)
    deadline = time.monotonic() + PUMP_DRAIN_S
    while expect not in (tmp_path / f"{how}.err").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    return done.returncode, (tmp_path / f"{how}.err").read_text().splitlines()


def native_messages(lines: list[str]) -> list[str]:
    entries = [json.loads(line) for line in lines]  # every line JSON
    return [e["message"] for e in entries if e["logger"] == "native"]


def test_native_lines_are_drained_at_the_end(tmp_path):
    code, lines = run_script(tmp_path, "end")
    assert code == 0, lines
    entries = [json.loads(line) for line in lines[:-1]]
    assert {(e["logger"], e["message"]) for e in entries} == {
        ("vigil", "our own line"), ("native", "first native line"),
        ("native", "second, without its end")}
    assert lines[-1] == "after: as it came"  # descriptor 2 is back where it was


def test_a_crash_inside_still_says_why(tmp_path):
    """The process that reads the pipe outlives its parent: a crashing library's last words
    and faulthandler's report come out (as JSON) where a thread of the crashed process would
    have lost them."""
    code, lines = run_script(tmp_path, "abort", "malloc(): corrupted")
    assert code == -6 and "malloc(): corrupted top size" in native_messages(lines), lines
    code, lines = run_script(tmp_path, "crash", "in <module>",
                             env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    messages = native_messages(lines)
    assert code == -11, lines  # (the report continues the unended line before it)
    assert any("Fatal Python error: Segmentation fault" in message for message in messages)
    assert any(message.endswith("in <module>") for message in messages)  # its traceback too


def test_without_stderr_the_run_goes_on(tiny_image_artifact, tmp_path):
    """With descriptor 2 closed (2>&-) Python has no sys.stderr: the run scores as without
    --log-json (it ended with exit 1 and nothing written once)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000.png"), normal_frame(np.random.default_rng(1)))
    done = subprocess.run([sys.executable, "-m", "vigil", "--log-json", "score",
                           str(tiny_image_artifact), str(folder), "--jsonl",
                           str(tmp_path / "out.jsonl")], cwd=tmp_path, timeout=300,
                          stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(2))
    assert done.returncode == 0
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 1


def test_a_terminal_is_left_alone(tmp_path):
    """On a terminal a person reads stderr (and a hang-up is handled there): no pipe."""
    script = tmp_path / "s.py"
    script.write_text(SCRIPT)
    controller, terminal = os.openpty()
    try:
        done = subprocess.run([sys.executable, str(script), "end"], stderr=terminal,
                              timeout=60)
        os.close(terminal)
        terminal = None
        text = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal's other end closed: all read
                break
            if not chunk:
                break
            text += chunk
    finally:
        os.close(controller)
        if terminal is not None:
            os.close(terminal)
    assert done.returncode == 0
    assert b"first native line\r\nsecond, without its end" in text  # as the library wrote it
