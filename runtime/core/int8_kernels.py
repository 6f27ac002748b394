"""Whether this CPU's INT8 kernels can saturate on an artifact's weights.

On x86 CPUs without VNNI, onnxruntime's uint8 x int8 kernels add pairs of products in int16
(``vpmaddubsw``): 255 x 127 x 2 overflows it, and the kernel clamps without a word, which moves
scores. Vigil writes 7-bit weights (255 x 64 x 2 fits), and records that in the artifact's
parity as ``int8_weight_bits``; artifacts written before that have 8-bit weights. VNNI's
instructions add in int32, and ARM's kernels do not pair products in int16, so neither saturates.
"""

from __future__ import annotations

import platform
from pathlib import Path

from .spec import Spec

SAFE_WEIGHT_BITS = 7
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
X86 = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str] | None:
    """The first processor's feature flags on Linux, or None where they cannot be read."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return None


def saturation_warning(spec: Spec, path: str | Path, machine: str | None = None,
                       cpuinfo: Path = CPUINFO) -> str | None:
    """A warning when ``spec``'s INT8 weights can saturate this CPU's kernels, else None.

    ``machine`` defaults to this host's ``platform.machine()``; the flags come from ``cpuinfo``.
    """
    if spec.precision == "fp32":   # int8 and mixed hold INT8 weights
        return None
    bits = spec.parity.get("int8_weight_bits", 8)
    if isinstance(bits, (int, float)) and bits <= SAFE_WEIGHT_BITS:
        return None
    machine = (machine if machine is not None else platform.machine()).lower()
    if machine not in X86:
        return None
    flags = cpu_flags(cpuinfo)
    if flags is not None and flags & VNNI_FLAGS:
        return None
    cpu = "this CPU has no VNNI" if flags is not None else "this CPU may lack VNNI"
    return (f"model file {str(path)!r} is INT8 with 8-bit weights (written by vigil 0.2 or earlier) and "
            f"{cpu}: onnxruntime's INT8 kernels can saturate and move its scores (measured: a "
            f"test model's rank correlation with FP32 fell to 0.93). Re-export it from its Keras "
            f"model: vigil export MODEL.keras -o {Path(path).name}")
