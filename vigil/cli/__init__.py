"""The ``vigil`` command line (``vigil.cli.commands``) and its demo."""

from .commands import main

__all__ = ["main"]
