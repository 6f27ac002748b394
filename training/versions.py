"""Versions of the libraries that made an artifact, recorded in its metadata."""

from __future__ import annotations

from importlib import metadata

PACKAGES = ("vigil", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
