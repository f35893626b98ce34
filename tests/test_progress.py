"""The shared progress bar of long passes (passes/progress.py): shown only when wanted."""

import io

import pytest

from xir.passes.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_disabled_bar_does_nothing():
    bar = Progress(False, 3, "work", terminal_only=False)
    assert bar.bar is None
    bar.advance()
    bar.close()


def test_a_bar_counts_steps_and_goes_away_when_closed():
    bar = Progress(True, 5, "work", terminal_only=False)
    bar.advance()
    bar.advance(3)
    task = bar.bar.tasks[0]
    assert (task.description, task.total, task.completed) == ("work", 5, 4)
    bar.close()
    assert bar.bar is None
    bar.close()  # closing twice is harmless


@pytest.mark.parametrize("terminal, shown", [(False, False), (True, True)])
def test_terminal_only_bars_need_a_terminal(monkeypatch, terminal, shown):
    monkeypatch.setattr("sys.stderr", _Terminal() if terminal else io.StringIO())
    bar = Progress(True, 2, "work")
    try:
        assert (bar.bar is not None) == shown
    finally:
        bar.close()
