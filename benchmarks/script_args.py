"""Command-line checks the latency scripts share: given artifacts, and counts."""

from __future__ import annotations

import argparse
from pathlib import Path


def _at_least(text: str, least: int) -> int:
    """``text`` as a whole number of at least ``least``; argparse's error otherwise."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < least:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {least}; received {text!r}")
    return value


def positive_integer(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    return _at_least(text, 1)


def whole_number(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    return _at_least(text, 0)


def load_detector(path: Path):
    """The artifact at ``path`` on one thread (the runtime, imported only when needed)."""
    from vigil.runtime import load

    return load(path, threads=1)


def check_given_artifacts(parser: argparse.ArgumentParser, args: argparse.Namespace,
                          precisions: dict[str, str]) -> bool:
    """Whether the models to time are given (``--keras`` with an artifact for each required
    flag of ``precisions``, flag name -> the precision its artifact must have; ``mixed`` is
    optional), rather than trained by the script. A partial set (it trained a model of its own
    and timed that, without a word) or an artifact of another precision (a KeyError after a
    minute of timing) ends in ``parser.error``, before anything is timed."""
    required = ["keras", *(flag for flag in precisions if flag != "mixed")]
    given = [flag for flag in required if getattr(args, flag) is not None]
    if not given:
        if getattr(args, "mixed", None) is not None:
            parser.error("--mixed is timed beside a given --keras, --int8 and --fp32; give "
                         "them too, or leave --mixed out (the script trains its own model)")
        return False
    missing = [flag for flag in required if flag not in given]
    if missing:
        parser.error(f"{', '.join('--' + f for f in given)} given without "
                     f"{', '.join('--' + f for f in missing)}: give all of "
                     f"{', '.join('--' + f for f in required)} (one model and its exports), or "
                     "none, and the script trains its own")
    for flag, precision in precisions.items():
        path = getattr(args, flag, None)
        if path is None:
            continue
        try:
            found = load_detector(path).spec.precision
        except Exception as error:  # an artifact the runtime refuses: said as the flag's
            parser.error(f"--{flag} {str(path)!r}: {error}")
        if found != precision:
            parser.error(f"--{flag} {str(path)!r} is {_article(found)} {found} artifact; "
                         f"--{flag} takes {_article(precision)} {precision} one (vigil export "
                         f"MODEL.keras -o OUT.onnx --precision {precision})")
    from vigil.benchmarks.bench import refuse_other_keras

    artifacts = [str(getattr(args, flag)) for flag in precisions
                 if getattr(args, flag, None) is not None]
    try:  # another model's artifact failed in TFLite's shape check after the timing
        refuse_other_keras(artifacts, str(args.keras))
    except ValueError as error:
        parser.error(str(error).replace("`--against`", "--keras"))
    return True


def _article(precision: str) -> str:
    return "a" if precision == "mixed" else "an"  # an int8, an fp32 (said "eff")
