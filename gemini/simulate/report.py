"""HTML report of a simulation: interactive plotly charts embedded offline, and the score table.

Owns rendering only (no simulation). plotly.js is included in the file once (no CDN), so the
report opens without a network. Long series are reduced to at most `MAX_POINTS` points per line
(the maximum of each bucket; violations are shaded from the full-resolution series). Must not
import `gemini.metrics` or `gemini.scalers`.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gemini.simulate.replay import Run
from gemini.simulate.runner import Outcome
from gemini.simulate.scoring import violations

MAX_POINTS = 4000
MAX_SHADES = 300


def _bucket(values: list[float], size: int, fn: Any) -> list[float]:
    return [fn(values[i : i + size]) for i in range(0, len(values), size)]


def _episodes(bad: list[bool]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = -1
    for k, b in enumerate(bad):
        if b and start < 0:
            start = k
        elif not b and start >= 0:
            out.append((start, k))
            start = -1
    if start >= 0:
        out.append((start, len(bad)))
    return out


def _figure(outcome: Outcome, run: Run) -> Any:
    import plotly.graph_objects as go

    grid = outcome.grid
    slo = outcome.scenario.spec.slo
    n = len(grid)
    size = max(1, -(-n // MAX_POINTS))
    times = [datetime.fromtimestamp(grid.time(k), UTC) for k in range(0, n, size)]
    load = _bucket(list(grid.demand), size, max)
    ready = _bucket(run.ready_capacity, size, max)
    usable = [c * slo.max_utilization for c in ready]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=times, y=load, name="load (per s)", line={"color": "#444"}))
    fig.add_trace(
        go.Scatter(
            x=times, y=ready, name="ready capacity", line={"color": "#1f77b4", "shape": "hv"}
        )
    )
    fig.add_trace(
        go.Scatter(
            x=times,
            y=usable,
            name=f"capacity x {slo.max_utilization:g} (SLO)",
            line={"color": "#1f77b4", "dash": "dot", "shape": "hv"},
        )
    )
    cap = outcome.scenario.model.capacity_per_replica
    if run.decisions:
        ds = run.decisions
        if len(ds) > MAX_POINTS:
            ds = ds[:: -(-len(ds) // MAX_POINTS)]
        fig.add_trace(
            go.Scatter(
                x=[d.at for d in ds],
                y=[d.desired * cap for d in ds],
                mode="markers",
                name="decisions (desired x capacity)",
                marker={"size": 6, "color": "#d62728", "symbol": "diamond"},
                text=[f"{d.current} -> {d.desired}: {', '.join(d.reasons)}" for d in ds],
                hoverinfo="text+x",
            )
        )
    eps = _episodes(violations(run, outcome.scenario_slo))
    eps.sort(key=lambda e: e[1] - e[0], reverse=True)
    # one layout update for all the shades: `add_vrect` re-validates every shape already on
    # the figure, so adding hundreds one by one takes minutes
    shades = [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": datetime.fromtimestamp(grid.time(a), UTC),
            "x1": datetime.fromtimestamp(grid.time(b), UTC),
            "y0": 0,
            "y1": 1,
            "fillcolor": "red",
            "opacity": 0.25,
            "line": {"width": 0},
            "layer": "below",
        }
        for a, b in eps[:MAX_SHADES]
    ]
    fig.update_layout(
        shapes=shades,
        title=f"{run.name} ({run.kind}): load vs capacity; SLO violations shaded",
        height=380,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h"},
        xaxis={"rangeslider": {"visible": False}},
    )
    return fig


def render(outcome: Outcome) -> str:
    data = outcome.to_dict()
    rows = []
    cols = [
        ("name", "name"),
        ("kind", "kind"),
        ("capacityHours", "capacity-hours"),
        ("oracleRatio", "x oracle"),
        ("cost", "cost"),
        ("sloViolationMinutes", "violation min"),
        ("sloViolationShare", "violation share"),
        ("scaleEvents", "scale events"),
        ("flaps", "flaps"),
        ("maxReplicas", "max"),
        ("meanReplicas", "mean"),
        ("maxRecoverySeconds", "max recovery s"),
    ]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in cols)
    for r in data["results"]:
        cells = "".join(
            f"<td>{html.escape('-' if r.get(k) is None else str(r.get(k)))}</td>" for k, _ in cols
        )
        rows.append(f"<tr>{cells}</tr>")
    parts = []
    for i, run in enumerate(outcome.runs):
        fig = _figure(outcome, run)
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"run-{i}"))
    title = html.escape(f"gemini simulate: {data['scenario']}")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:20px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} th{{background:#eee}}</style>
</head><body>
<h1>{title}</h1>
<p>{data["steps"]} steps of {data["stepSeconds"]:g} s ({data["simulatedHours"]} h simulated) in
{data["wallSeconds"]} s. Oracle capacity-hours: {data["oracleCapacityHours"]}.</p>
<table id="scores"><tr>{head}</tr>{"".join(rows)}</table>
{"".join(parts)}
</body></html>
"""


def write_report(outcome: Outcome, path: str | Path) -> None:
    Path(path).write_text(render(outcome))
