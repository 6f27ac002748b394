"""Choosing onnxruntime execution providers for a device, with CPU fallback."""

from __future__ import annotations

import logging
from typing import Sequence

import onnxruntime as ort

log = logging.getLogger("vigil")

DEVICES = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
# onnxruntime's CPU wheel has no GPU providers; the README's Install has the full recipe
GPU_BUILD_HINT = ("; for a GPU, onnxruntime's GPU build replaces the CPU one (the two share "
                  "files, so both go first): pip uninstall -y onnxruntime onnxruntime-gpu && pip "
                  "install 'onnxruntime-gpu>=1.18.1' (with CUDA and cuDNN)")


def providers_for_device(device: str, argument: str = "device") -> list[str]:
    """Providers for ``auto``, ``cpu``, ``cuda`` or ``tensorrt``, keeping those installed, or
    for a preference list such as ``tensorrt,cuda,cpu`` (the first one available here wins).

    A requested accelerator that is not available falls back to CPU with a warning.
    ``argument`` is the name errors give the value (``providers`` where the Python API took it).
    """
    available = ort.get_available_providers()
    given, device = device, device.strip().lower()  # "CUDA" is "cuda"
    if "," in device:
        names = [d.strip() for d in device.split(",") if d.strip()]
        unknown = [d for d in names if d != "auto" and d not in DEVICES]
        if unknown or not names:
            raise ValueError(f"`{argument}` must be one of {['auto', *DEVICES]} or a comma-separated "
                             f"preference list of them; received {given!r}")
        for position, name in enumerate(names):
            if name in ("auto", "cpu") or DEVICES[name][0] in available:
                skipped = [d for d in names[:position] if d not in ("auto", "cpu")]
                if skipped:  # the device was asked for first: say why it is not used
                    what = (f"device {skipped[0]!r} is" if len(skipped) == 1 else
                            f"devices {' and '.join(map(repr, skipped))} are")
                    log.info("%s not available here (available: %s); using %r, the next in the "
                             "preference list%s", what, ", ".join(available), name,
                             GPU_BUILD_HINT)
                return providers_for_device(name)
        log.warning("none of the devices %s is available here (available: %s); using CPU%s",
                    names, ", ".join(available), GPU_BUILD_HINT)
        return ["CPUExecutionProvider"]
    if device == "auto":
        for name in ("tensorrt", "cuda"):
            if DEVICES[name][0] in available:
                return [p for p in DEVICES[name] if p in available]
        return ["CPUExecutionProvider"]
    if device not in DEVICES:
        raise ValueError(f"`{argument}` must be one of {['auto', *DEVICES]}"
                         + (" or an onnxruntime provider's name, as it spells it (such as "
                            "'CPUExecutionProvider')" if argument == "providers" else "")
                         + f"; received {given!r}")
    wanted = DEVICES[device]
    if wanted[0] not in available:
        log.warning("device %r requested but onnxruntime has no %s (available: %s); using CPU%s",
                    device, wanted[0], ", ".join(available), GPU_BUILD_HINT)
    return [p for p in wanted if p in available] or ["CPUExecutionProvider"]


def session_providers(providers: Sequence[str] | None) -> list[str]:
    """Providers to open a session with: the given list filtered to installed ones, else CPU."""
    if providers is None:
        return ["CPUExecutionProvider"]
    if isinstance(providers, str):
        if providers.strip() in ort.get_all_providers():  # "CPUExecutionProvider": a list of one
            return session_providers([providers.strip()])
        return providers_for_device(providers, argument="providers")
    if not isinstance(providers, (list, tuple)) or not all(isinstance(p, str) for p in providers):
        raise TypeError(f"`providers` must be a device name ('auto', 'cpu', 'cuda', 'tensorrt') "
                        f"or a list of onnxruntime provider names; received {providers!r}")
    available = ort.get_available_providers()
    # a device name in the list ("cuda") stands for its providers, as it does alone
    expanded = [name for p in providers for name in DEVICES.get(p.strip().lower(), [p])]
    chosen = list(dict.fromkeys(p for p in expanded if p in available))
    dropped = [p for p in dict.fromkeys(expanded) if p not in available]
    known = ort.get_all_providers()
    unknown = [p for p in dropped if p not in known]
    if unknown:
        raise ValueError(f"`providers` names {unknown}, which are neither devices "
                         f"({', '.join(DEVICES)}) nor onnxruntime providers (such as "
                         f"{', '.join(known[:3])}); received {list(providers)}")
    if dropped:
        log.warning("execution providers %s are not available here (available: %s); skipping "
                    "them%s", dropped, ", ".join(available),
                    GPU_BUILD_HINT if any(p != "CPUExecutionProvider" for p in dropped) else "")
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen
