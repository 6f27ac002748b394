"""The ``vigil`` command line (``vigil.cli.commands``) and its demo."""

from __future__ import annotations

import os
import sys

# What fixes each runtime dependency that cannot be imported (the device's three)
DEPENDENCY_FIXES = {
    "numpy": "pip install --force-reinstall numpy (an onnxruntime before 1.18.1 needs "
             "'numpy<2')",
    "onnxruntime": "pip install 'onnxruntime>=1.18.1' ({gpu}), or pip install 'numpy<2' to "
                   "keep an older onnxruntime",
    "cv2": "pip uninstall -y opencv-python && pip install --force-reinstall "
           "opencv-python-headless (the headless wheel needs no libGL or display libraries)",
}


def main(argv: list[str] | None = None) -> int:
    """``vigil``: the command line. ``--version`` is answered before anything is imported, and
    a runtime dependency that cannot be imported (an onnxruntime built against another numpy,
    an OpenCV wheel that needs libGL) is one line naming it and its fix, not a traceback."""
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

        return run(argv)
    except ImportError:
        broken = _broken_dependency()
        if broken is None:
            raise  # ours, or an optional package the command names itself
        name, reason = broken
        print(f"vigil: error: {name} cannot be imported ({reason}): the device's three "
              f"dependencies (onnxruntime, numpy, opencv-python-headless) must be installed and "
              f"built for each other. Fix: {_fix(name)}", file=sys.stderr)
        return 1


def _fix(name: str) -> str:
    """The command that mends ``name``, naming the GPU build where it is the one installed."""
    from importlib import metadata

    try:
        metadata.version("onnxruntime-gpu")
        gpu = "on this GPU device: 'onnxruntime-gpu>=1.18.1' in its place"
    except metadata.PackageNotFoundError:
        gpu = "or 'onnxruntime-gpu>=1.18.1' on a GPU device, in its place"
    return DEPENDENCY_FIXES[name].format(gpu=gpu)


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
