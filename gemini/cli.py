"""The `gemini` command line. Subcommands delegate to their area's module; heavy imports happen
inside each command so `gemini validate` never loads the Google or Kubernetes clients.

Exit codes: 0 success, 1 invalid input or a failed check, 2 usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="gemini",
    help="Custom-metrics autoscaler for Kubernetes workloads and Cloud Bigtable clusters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(1)


@app.command()
def validate(
    files: Annotated[
        list[Path],
        typer.Argument(help="ScalingPolicy manifests (YAML, several documents allowed)."),
    ],
) -> None:
    """Validate ScalingPolicy manifests; one line per problem: FILE: NAME: FIELD: MESSAGE."""
    from gemini import manifests

    warnings: list[str] = []
    problems = manifests.validate_files(files, warnings)
    for line in warnings:
        typer.echo(f"warning: {line}", err=True)
    if problems:
        _fail(problems)
    typer.echo(f"{len(files)} file(s) valid")


@app.command()
def crd() -> None:
    """Print the CustomResourceDefinition generated from the spec models."""
    from gemini.policy import crd as crd_mod

    typer.echo(crd_mod.render(), nl=False)


@app.command()
def evaluate(
    policy: Annotated[Path, typer.Option("--policy", help="ScalingPolicy manifest.")],
    current: Annotated[
        int,
        typer.Option("--current", min=0, max=2**31 - 1, help="Current replicas (nodes)."),
    ],
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help=(
                "NAME=VALUE (repeatable; VALUE may be 0.8, 80%, 500m; for a Utilization target a "
                "bare number above 10 is a percent). Left out: unavailable."
            ),
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    now: Annotated[
        str | None, typer.Option("--now", help="Evaluate at this ISO-8601 time (schedules).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Policy name when the file holds several.")
    ] = None,
) -> None:
    """One evaluation as on the policy's first tick (no history; rate limits relative to --current)."""
    from gemini import manifests

    code = manifests.evaluate_command(policy, current, metric or [], as_json, now, name)
    raise typer.Exit(code)


@app.command()
def metrics(
    policy: Annotated[Path, typer.Option("--policy", help="ScalingPolicy manifest.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Read every metric of the policy once from its real source."""
    from gemini.metrics import commands

    raise typer.Exit(commands.metrics_command(policy, as_json))


@app.command()
def record(
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Read this policy's metric.")
    ] = None,
    metric_name: Annotated[
        str | None, typer.Option("--metric", help="Which metric of --policy.")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Project (with --filter).")
    ] = None,
    filter_: Annotated[
        str | None, typer.Option("--filter", help="Cloud Monitoring filter.")
    ] = None,
    aligner: Annotated[str, typer.Option("--aligner")] = "ALIGN_MEAN",
    reducer: Annotated[str, typer.Option("--reducer")] = "REDUCE_SUM",
    period: Annotated[int, typer.Option("--alignment-period", help="Seconds.")] = 60,
    days: Annotated[float, typer.Option("--days", help="How far back.")] = 7.0,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Trace file to write (CSV).")
    ] = Path("trace.csv"),
) -> None:
    """Export a metric's time series from Cloud Monitoring into the trace format."""
    from gemini.metrics import commands

    raise typer.Exit(
        commands.record_command(
            policy=policy,
            metric_name=metric_name,
            project=project,
            filter_=filter_,
            aligner=aligner,
            reducer=reducer,
            period=period,
            days=days,
            output=output,
        )
    )


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (YAML).")],
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Write the JSON result here ('-': stdout, table on stderr)."),
    ] = None,
    decisions: Annotated[
        Path | None, typer.Option("--decisions", help="Write the decision log (JSONL).")
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML report.")] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Also store decisions in this decision store URL.")
    ] = None,
) -> None:
    """Replay a scenario through the engine; print a summary table."""
    from gemini.simulate import commands

    raise typer.Exit(commands.simulate_command(scenario, json_out, decisions, report, db))


@app.command()
def tune(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (YAML).")],
    trials: Annotated[int, typer.Option("--trials", min=1)] = 100,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1)] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the JSON result here.")
    ] = None,
    out_policy: Annotated[
        Path | None, typer.Option("--out-policy", help="Write the best manifest here.")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Parallel workers.")] = 2,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0,
            help="Start no trials after this many seconds (the running ones finish, then the "
            "best is scored and written, with the trade-off). Ctrl-C stops at once: the "
            "running trials are dropped, the trade-off skipped, the best written, exit 130.",
        ),
    ] = None,
) -> None:
    """Search policy parameters on the scenario's trace; report train and held-back scores."""
    from gemini.simulate import commands

    raise typer.Exit(
        commands.tune_command(scenario, trials, seed, json_out, out_policy, jobs, timeout)
    )


@app.command()
def controller(
    kubeconfig: Annotated[str | None, typer.Option("--kubeconfig")] = None,
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", help="Watch only these (repeatable).")
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Decision store URL (default sqlite file).")
    ] = None,
    port: Annotated[int, typer.Option("--port")] = 8080,
) -> None:
    """Run the controller (in-cluster, or outside with a kubeconfig)."""
    from gemini.controller import commands

    raise typer.Exit(commands.controller_command(kubeconfig, namespace or [], db, port))


@app.command()
def dashboard(
    db: Annotated[str, typer.Option("--db", help="Decision store URL.")],
    port: Annotated[int, typer.Option("--port")] = 8080,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
) -> None:
    """Serve the dashboard alone over a decision store."""
    from gemini.dashboard import commands

    raise typer.Exit(commands.dashboard_command(db, port, host))


@app.command()
def demo(
    port: Annotated[int, typer.Option("--port")] = 8080,
    speed: Annotated[float, typer.Option("--speed", help="Times real time.")] = 60.0,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many wall seconds.")
    ] = None,
) -> None:
    """The whole loop on one machine: controller loop, simulated backends, dashboard."""
    from gemini import demo as demo_mod

    raise typer.Exit(demo_mod.demo_command(port, speed, duration))


def main() -> None:
    app()
