"""PNG charts for the Slack reports (matplotlib with the Agg backend: no display, no GUI).

matplotlib is imported inside the function: DAG files and the other checks never pay for it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime

__all__ = ["latency_error_chart"]

Points = Sequence[tuple[datetime, float]]


def latency_error_chart(
    latency_ms: Points,
    error_pct: Points,
    *,
    title: str,
    slo_p95_ms: float,
    latency_warning_ms: float,
    latency_critical_ms: float,
    slo_error_pct: float,
    error_warning_pct: float,
    error_critical_pct: float,
    start: datetime | None = None,
    end: datetime | None = None,
) -> bytes:
    """Two stacked panels — p95 latency (ms) and error rate (%) over time — as PNG bytes.

    Each panel shows the SLO and the warning / critical alert thresholds as horizontal lines. An
    empty series draws an empty panel labelled "no data", so the chart never fails on a quiet week.
    ``start`` / ``end`` fix the time axis (the whole week even when data covers part of it).
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6), dpi=100, layout="constrained")
    ax_lat, ax_err = fig.subplots(2, 1, sharex=True)
    panels = (
        (
            ax_lat,
            latency_ms,
            "p95 latency (ms)",
            "tab:blue",
            slo_p95_ms,
            latency_warning_ms,
            latency_critical_ms,
        ),
        (
            ax_err,
            error_pct,
            "error rate (%)",
            "tab:red",
            slo_error_pct,
            error_warning_pct,
            error_critical_pct,
        ),
    )
    for ax, points, label, colour, slo, warning, critical in panels:
        if points:
            ax.plot([t for t, _ in points], [v for _, v in points], color=colour, linewidth=1.2, label=label)
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")
        ax.axhline(slo, color="green", linestyle="--", linewidth=1, label=f"SLO {slo:g}")
        ax.axhline(warning, color="orange", linestyle=":", linewidth=1, label=f"warning {warning:g}")
        ax.axhline(critical, color="darkred", linestyle=":", linewidth=1, label=f"critical {critical:g}")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    ax_err.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %H:%M", tz="UTC"))  # type: ignore[no-untyped-call]
    if start is not None and end is not None:
        ax_err.set_xlim(start, end)
    ax_err.set_xlabel("UTC")
    fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
