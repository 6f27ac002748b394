"""Vigil: edge anomaly detection in one self-describing .onnx file.

``vigil.runtime`` is what a device needs (onnxruntime, numpy, OpenCV); ``vigil.training``,
``vigil.export`` and ``vigil.benchmarks`` come with the ``train`` extra; ``vigil.cli`` is the
``vigil`` command. ``vigil.load`` is ``vigil.runtime.load``, imported on first use so that
``import vigil`` stays cheap.
"""

import os as _os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the lazy names are, for type checkers (never imported at run time);
    # "X as X" re-exports them for a checker run with --strict (no implicit re-export)
    from .runtime import ArtifactError as ArtifactError  # noqa: F401
    from .runtime import ImageDetector as ImageDetector  # noqa: F401
    from .runtime import Result as Result  # noqa: F401
    from .runtime import SensorDetector as SensorDetector  # noqa: F401
    from .runtime import StreamingScorer as StreamingScorer  # noqa: F401
    from .runtime import load as load  # noqa: F401

__version__ = "0.3.0"

# onnxruntime records each session's device id, system, memory and cores in a local database
# (~/.cache/Microsoft/DeveloperTools/.onnxruntime) for Microsoft's telemetry unless told not to:
# a device on a plant's network sends nothing unasked. ORT_DISABLE_TELEMETRY=0 opts in. Set
# before onnxruntime is first imported by anything of Vigil's.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# In a source checkout (`python -m vigil` run in the repository, with a non-editable install)
# this folder is imported rather than the installed package, and the layers are beside it, not
# in it: they are looked up there, as pyproject.toml maps them (runtime/ is vigil.runtime).
_HERE = _os.path.dirname(_os.path.abspath(__file__))
_ROOT = _os.path.dirname(_HERE)
if not _os.path.isdir(_os.path.join(_HERE, "runtime")) \
        and _os.path.isfile(_os.path.join(_ROOT, "runtime", "__init__.py")) \
        and _os.path.isfile(_os.path.join(_ROOT, "pyproject.toml")):
    __path__.append(_ROOT)

_RUNTIME_NAMES = ("load", "SensorDetector", "ImageDetector", "StreamingScorer", "Result",
                  "ArtifactError")


def __getattr__(name: str):
    if name in _RUNTIME_NAMES:
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'vigil' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_RUNTIME_NAMES})


# written out (not built from _RUNTIME_NAMES), so that type checkers read it
__all__ = ["__version__", "load", "SensorDetector", "ImageDetector", "StreamingScorer", "Result",
           "ArtifactError"]
