"""What machine a benchmark ran on, and its estimated arithmetic peak per core."""

from __future__ import annotations

import os
import platform
from pathlib import Path

def cpu_info() -> dict:
    """CPU model, vendor, cores available to this process, clock, and the ISA flags that matter."""
    model, vendor, mhz = platform.processor() or platform.machine(), "", None
    flags: set[str] = set()
    family = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name" and model in ("", platform.processor(), platform.machine()):
                model = value
            elif key == "vendor_id":
                vendor = value
            elif key == "flags" and not flags:
                flags = set(value.split())
            elif key == "cpu MHz" and mhz is None:
                mhz = float(value)
            elif key == "cpu family" and family is None and value.isdigit():
                family = int(value)
    except OSError:
        pass
    max_khz = _read_int("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    ghz = (max_khz / 1e6) if max_khz else (mhz / 1e3 if mhz else None)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    relevant = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4_2", "f16c")))
    return {"model": model, "vendor": vendor, "family": family, "cores": cores, "ghz": ghz,
            "isa": relevant, "machine": platform.machine()}


def peak_per_core(info: dict) -> dict:
    """Estimated peak FP32 FLOP/s and INT8 op/s of one core, from ISA flags and clock.

    Assumptions (stated in the output): two FMA pipes; AMD cores before Zen 5 (CPU family
    0x1A) and Zen 5's mobile parts run 512-bit vectors as two 256-bit halves; VNNI does 4 int8
    multiply-adds per 32-bit lane; AMX-INT8 does 1024 multiply-adds per cycle.
    """
    isa = set(info.get("isa", []))
    ghz = info.get("ghz")
    amd = "AMD" in (info.get("vendor") or "") or "AMD" in (info.get("model") or "")
    width = 512 if "avx512f" in isa else 256 if "avx2" in isa or "avx" in isa else 128
    # Zen 4 (family 0x19) runs 512-bit vectors as two 256-bit halves; Zen 5 (0x1A) desktop and
    # server parts have full 512-bit data paths, its mobile parts ("Ryzen AI") 256-bit ones
    full = (info.get("family") or 0) >= 0x1A and "Ryzen AI" not in (info.get("model") or "")
    if amd and width == 512 and not full:
        width = 256  # double-pumped
    fp32_lanes = width // 32
    fp32_per_cycle = fp32_lanes * 2 * 2  # FMA = 2 flops, two pipes
    if "amx_int8" in isa:
        int8_per_cycle, int8_kind = 2048, "AMX-INT8"
    elif "avx512_vnni" in isa or "avx_vnni" in isa:
        int8_per_cycle, int8_kind = fp32_lanes * 4 * 2 * 2, "VNNI"
    elif "avx2" in isa:
        int8_per_cycle, int8_kind = fp32_lanes * 4 * 2, "AVX2 (pmaddubsw, no VNNI)"
    else:
        int8_per_cycle, int8_kind = fp32_lanes * 2, "no int8 dot-product instructions"
    if not ghz:  # no clock known (a VM without cpufreq or "cpu MHz"): no peak to compare with
        return {"fp32_flops": None, "int8_ops": None, "int8_kind": int8_kind,
                "vector_bits": width, "ghz": None,
                "assumptions": "the clock is unknown here, so no peak is estimated"}
    return {
        "fp32_flops": fp32_per_cycle * ghz * 1e9, "int8_ops": int8_per_cycle * ghz * 1e9,
        "int8_kind": int8_kind, "vector_bits": width, "ghz": ghz,
        "assumptions": "two FMA pipes; AMD pre-Zen5 512-bit = 2x256; VNNI 4 MACs/32-bit lane; "
                       "AMX 1024 MACs/cycle; clock = max frequency",
    }


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None
