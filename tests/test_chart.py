"""The digest's chart: a PNG of the promised size, gaps for days without a verdict, at most
five series, an empty period still drawn, and matplotlib left unimported until then."""

from __future__ import annotations

import datetime
import io
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.image import imread

from bot.digest.chart import HEIGHT, MAX_SERIES, WIDTH, approval_chart

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"
DAYS = [datetime.date(2024, 11, 20) + datetime.timedelta(days=i) for i in range(30)]


def _series(n: int) -> dict[str, list[float | None]]:
    return {
        f"agent {k}": [float((k * 17 + i * 7) % 101) for i in range(len(DAYS))] for k in range(n)
    }


def _pixels(png: bytes) -> tuple[int, int]:
    image = imread(io.BytesIO(png), format="png")
    return image.shape[0], image.shape[1]


def test_a_chart_is_a_png_of_800_by_400() -> None:
    png = approval_chart(DAYS, _series(3), "Approval per day")
    assert png.startswith(PNG)
    assert _pixels(png) == (400, 800) == (HEIGHT * 100, WIDTH * 100)


def test_a_day_without_a_verdict_is_a_gap_not_zero() -> None:
    gapped = _series(1)
    gapped["agent 0"][3:9] = [None] * 6
    gapped["agent 0"][0] = None
    zeroed = {"agent 0": [0.0 if v is None else v for v in gapped["agent 0"]]}
    png = approval_chart(DAYS, gapped, "Approval per day")
    assert png.startswith(PNG) and _pixels(png) == (400, 800)
    assert png != approval_chart(DAYS, zeroed, "Approval per day")
    # A day alone between gaps is drawn too (as a marker), and so is a period of one day.
    lonely: list[float | None] = [None] * len(DAYS)
    lonely[10] = 100.0
    assert approval_chart(DAYS, {"agent 0": lonely}, "t").startswith(PNG)
    assert approval_chart(DAYS[:1], {"agent 0": [50.0]}, "t").startswith(PNG)


def test_only_the_first_five_series_are_drawn() -> None:
    six = _series(MAX_SERIES + 1)
    first_five = dict(list(six.items())[:MAX_SERIES])
    last_five = dict(list(six.items())[1:])
    # The same figure, drawn twice, is the same bytes: the sixth series left no trace.
    drawn = approval_chart(DAYS, six, "Approval per day")
    assert drawn == approval_chart(DAYS, first_five, "Approval per day")
    assert drawn != approval_chart(DAYS, last_five, "Approval per day")


def test_an_empty_period_still_draws_with_its_title() -> None:
    empty = approval_chart([], {}, "Approval per day, Dec 1 – Dec 7")
    assert empty.startswith(PNG) and _pixels(empty) == (400, 800)
    assert empty != approval_chart([], {}, "Another title")
    # Days but no verdict on any of them: the same note, the legend still names the series.
    none: dict[str, list[float | None]] = {"agent 0": [None] * len(DAYS)}
    assert approval_chart(DAYS, none, "t").startswith(PNG)
    assert approval_chart(DAYS, {}, "t").startswith(PNG)


def test_a_series_of_another_length_than_the_days_is_refused() -> None:
    with pytest.raises(ValueError, match="'agent 0' has 29 values for 30 days"):
        approval_chart(DAYS, {"agent 0": [50.0] * 29}, "t")


def test_importing_the_chart_module_does_not_import_matplotlib() -> None:
    # In a fresh interpreter: this one has imported matplotlib for the tests above.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import bot.digest.chart, sys; assert 'matplotlib' not in sys.modules",
        ],
        cwd=ROOT,
        check=True,
        timeout=60,
    )
