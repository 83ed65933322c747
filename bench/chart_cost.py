"""What the digest's chart costs: start-up time and memory with and without matplotlib, and
the time of drawing one chart.

    python -m bench.chart_cost

Each stage runs in a fresh interpreter (median of 5), so that nothing an earlier stage
imported is counted as free: (a) the bot's start-up imports, `import bot.app`; (b) the same
plus matplotlib's figure and Agg backend; (c) the same plus drawing one 30-day, 5-series
chart. Then a warm process draws the chart again and again (median of 10): what each digest
pays once matplotlib is loaded.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
WARM_RUNS = 10

# Stays within the child: its figures are printed as one JSON line.
CHART = """
import datetime
from bot.digest.chart import approval_chart
days = [datetime.date(2024, 11, 20) + datetime.timedelta(days=i) for i in range(30)]
series = {
    f"agent {k}": [None if (i + k) % 7 == 0 else float((k * 17 + i * 7) % 101) for i in range(30)]
    for k in range(5)
}
draw = lambda: approval_chart(days, series, "Approval per day, Nov 20 – Dec 19")
"""
STAGES = {
    "a. import bot.app": "import bot.app",
    "b. + matplotlib.figure, backend_agg": (
        "import bot.app\nimport matplotlib.figure, matplotlib.backends.backend_agg"
    ),
    "c. + one 30-day, 5-series chart": f"import bot.app\n{CHART}\ndraw()",
}
CHILD = """
import json, resource, sys, time
start = time.perf_counter()
exec(compile(sys.argv[1], "<stage>", "exec"))
seconds = time.perf_counter() - start
print(json.dumps({"s": seconds, "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""
WARM = f"""
import json, time
{CHART}
draw()  # the first draw loads fonts and caches: not what a later one pays
times = []
for _ in range({WARM_RUNS}):
    start = time.perf_counter()
    draw()
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def _child(code: str, *args: str) -> tuple[str, float]:
    """The child's last line of output, and its whole life in seconds (interpreter start-up
    included)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip().splitlines()[-1], time.perf_counter() - start


def stage(code: str) -> dict[str, float]:
    runs = []
    for _ in range(RUNS):
        line, process_s = _child(CHILD, code)
        runs.append(json.loads(line) | {"process_s": process_s})
    return {
        "ms": statistics.median(r["s"] for r in runs) * 1000,
        "process_ms": statistics.median(r["process_s"] for r in runs) * 1000,
        "rss_mib": statistics.median(r["rss_kib"] for r in runs) / 1024,  # KiB on Linux
    }


def main() -> int:
    results = {name: stage(code) for name, code in STAGES.items()}
    line, _ = _child(WARM)
    warm_ms = statistics.median(json.loads(line)) * 1000

    base = results["a. import bot.app"]
    width = max(map(len, results)) + 2
    print(f"{'':{width}}{'ms':>8}{'Δ ms':>8}{'process ms':>12}{'peak RSS MiB':>14}{'Δ MiB':>8}")
    for name, r in results.items():
        print(
            f"{name:{width}}{r['ms']:8.0f}{r['ms'] - base['ms']:8.0f}{r['process_ms']:12.0f}"
            f"{r['rss_mib']:14.1f}{r['rss_mib'] - base['rss_mib']:8.1f}"
        )
    print(f"\nwarm process, one more chart: {warm_ms:.0f} ms (median of {WARM_RUNS})")
    print(f"medians of {RUNS} fresh processes; ms is the stage's own code, process ms its life")
    return 0


if __name__ == "__main__":
    sys.exit(main())
