"""The progress bar writes little into a log file and redraws freely on a terminal."""

import io

from cryofm.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _draws(stream) -> int:
    bar = progress_bar(total=500, desc="t", unit="step", file=stream)
    for _ in range(500):
        bar.update(1)
    bar.close()
    return len([s for s in stream.getvalue().replace("\n", "\r").split("\r") if s.strip()])


def test_a_log_gets_the_first_and_last_line_only_and_a_terminal_more():
    log = io.StringIO()
    assert _draws(log) <= 3  # 500 quick updates: the opening line and the final one
    assert "500/500" in log.getvalue() and "\u2588" not in log.getvalue()  # ASCII in a log
    bar = progress_bar(total=3, file=_Terminal(), mininterval=0)
    assert bar.mininterval == 0  # a caller's interval wins
    bar.close()
