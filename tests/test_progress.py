import io

from paperwire.progress import Progress


def test_progress_line_shows_count_rate_and_percent():
    out = io.StringIO()
    p = Progress("importing x", total_bytes=1000, stream=out, enabled=True, interval=0)
    p.update(1500, 500)
    p.finish()
    text = out.getvalue()
    assert "importing x: 1,500 papers" in text and "/s" in text and "50.0%" in text and "ETA" in text
    assert text.endswith("\n")


def test_progress_is_silent_off_a_terminal():
    out = io.StringIO()  # StringIO is not a TTY
    p = Progress("x", stream=out)
    p.update(10)
    p.finish()
    assert out.getvalue() == ""
