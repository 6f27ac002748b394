"""Versions of the libraries that made an artifact, recorded in its metadata."""

from __future__ import annotations

from importlib import metadata

from vigil import __version__

PACKAGES = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy")


def library_versions() -> dict[str, str]:
    versions = {"vigil": __version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
