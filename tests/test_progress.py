"""The progress bar writes little into a log file and redraws freely on a terminal."""

import io

from cryofm.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _draws(stream) -> int:
    bar = progress_bar(total=500, desc="t", unit="step", file=stream, leave=False)
    for _ in range(500):
        bar.update(1)
    bar.close()
    return len([s for s in stream.getvalue().replace("\n", "\r").split("\r") if s.strip()])


def test_a_log_gets_a_few_ascii_lines_and_keeps_the_last_and_a_caller_can_set_the_interval():
    log = io.StringIO()
    assert _draws(log) <= 3  # 500 quick updates: the opening line and the final one
    assert "500/500" in log.getvalue() and "\u2588" not in log.getvalue()  # ASCII, and the last line kept
    assert not log.getvalue().rstrip("\n").endswith(" ")  # not erased by leave=False
    bar = progress_bar(total=3, file=_Terminal(), mininterval=0)
    assert bar.mininterval == 0  # a caller's interval wins
    bar.close()
