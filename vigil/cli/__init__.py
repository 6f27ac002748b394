"""The ``vigil`` command line (``vigil.cli.commands``) and its demo."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    """``vigil``: the command line. ``--version`` is answered before anything is imported, and
    a runtime dependency that cannot be imported (an onnxruntime built against another numpy)
    is one line naming the fix, not a traceback."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments == ["--version"]:
        from vigil import __version__

        print(f"vigil {__version__}")
        return 0
    # OpenCV's decoders refuse images over the frame sources' limit (MAX_PIXELS in
    # vigil.runtime.camera.image_header) for formats whose header Vigil does not read; read
    # once, as OpenCV loads, so set before anything imports it (the command's process only)
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 26))
    try:
        from .commands import main as run
    except ImportError:
        broken = _broken_dependency()
        if broken is None:
            raise  # ours, not the installation's
        missing, reason = broken
        print(f"vigil: error: {missing} cannot be imported ({reason}): the device's three "
              "dependencies (onnxruntime, numpy, opencv-python-headless) must be installed and "
              "built for each other; an onnxruntime before 1.18.1 needs numpy below 2. Fix: pip "
              "install -U 'vigil-edge' 'onnxruntime>=1.18.1' (or pip install 'numpy<2' to keep "
              "an older onnxruntime)", file=sys.stderr)
        return 1
    return run(argv)


def _broken_dependency() -> tuple[str, str] | None:
    """The first of the runtime's dependencies that cannot be imported, and why (its error's
    first line), or None when all three can."""
    import importlib

    for name in ("numpy", "onnxruntime", "cv2"):
        try:
            importlib.import_module(name)
        except ImportError as error:
            text = str(error).strip()
            return name, text.splitlines()[0] if text else type(error).__name__
    return None


__all__ = ["main"]
