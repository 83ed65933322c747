"""The digest's chart: approval per day, one line per series, as PNG bytes.

matplotlib is imported inside approval_chart, never at the top: importing it adds nearly as
much again to the bot's start-up time, and two thirds to its memory, as all else it loads
(bench/chart_cost.py), and only a digest being posted needs it.
"""

from __future__ import annotations

import datetime
import io
import math
from collections.abc import Mapping, Sequence

MAX_SERIES = 5
WIDTH, HEIGHT, DPI = 8.0, 4.0, 100  # inches and dots per inch: 800×400 px
MAX_TICKS = 8  # date labels on the x axis, so that they never overlap at 800 px
MAX_LABEL = 28  # characters of a series' name in the legend
EMPTY_NOTE = "no votes in this period"


def approval_chart(
    days: Sequence[datetime.date], series: Mapping[str, Sequence[float | None]], title: str
) -> bytes:
    """A PNG of approval in percent per day: `series` maps a label to one value per day of
    `days` (None where that day had no verdict, drawn as a gap, not as 0).

    Only the first MAX_SERIES series, in the mapping's order, are drawn; the rest are left
    out (sliced, not refused: the caller ranks them, and a digest should not fail over a
    sixth). With nothing to draw (no series, or no value in any) the chart still has its
    title and says EMPTY_NOTE. Raises ValueError if a series' length differs from `days`'.
    """
    for label, values in series.items():
        if len(values) != len(days):
            raise ValueError(f"{label!r} has {len(values)} values for {len(days)} days")

    # No pyplot: it keeps global figures and may pick a GUI backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_ylim(0, 100)
    axes.yaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=0))
    axes.grid(axis="y", alpha=0.3)

    # Days as ordinals, labelled by hand: matplotlib's date units would only add a converter.
    x = [day.toordinal() for day in days]
    drawn = 0
    for label, values in list(series.items())[:MAX_SERIES]:
        # NaN breaks a line where None was; markers show a day with no neighbour to join.
        y = [math.nan if v is None else float(v) for v in values]
        axes.plot(x, y, marker="o", markersize=3, linewidth=1.5, label=_short(label), clip_on=False)
        drawn += any(v is not None for v in values)

    if days:
        step = math.ceil(len(days) / MAX_TICKS)
        ticks = list(days[::step])
        axes.set_xticks([day.toordinal() for day in ticks], labels=[_day(d) for d in ticks])
        axes.set_xlim(min(x) - 0.5, max(x) + 0.5)
    else:
        axes.set_xticks([])
    if series:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    if not drawn:
        axes.text(0.5, 0.5, EMPTY_NOTE, transform=axes.transAxes, ha="center", color="grey")

    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def _day(day: datetime.date) -> str:
    # Not strftime's %-d: that is glibc's, and a day with a leading zero reads worse.
    return f"{day:%b} {day.day}"


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"
