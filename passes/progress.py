"""A progress bar for long passes (calibration, sensitivity analysis): rich, on standard error,
removed when done, and nothing at all when it is not wanted."""

from __future__ import annotations

import sys


class Progress:
    """A rich progress bar on standard error counting ``total`` steps under ``description``.

    Shown only when ``enabled``, and, with ``terminal_only`` (the default), only when standard
    error is a terminal, so that a log file gets no bar. :meth:`advance` and :meth:`close` do
    nothing on a bar that is not shown.
    """

    def __init__(self, enabled: bool, total: int, description: str, terminal_only: bool = True):
        self.bar = None
        if enabled and (not terminal_only or sys.stderr.isatty()):
            from rich.console import Console
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more done."""
        if self.bar is not None:
            self.bar.advance(self.task, steps)

    def close(self) -> None:
        """Remove the bar (once; closing again does nothing)."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
