"""The benchmark suite: run every scenario in a folder; write results.md and results.json.

Owns the suite runner only (each scenario goes through `runner.simulate`, and optionally the
tuner). One broken scenario is reported and never stops the others. Must not import
`gemini.metrics` sources, `gemini.scalers` or network libraries.

    python -m gemini.simulate.suite simulations --out simulations/results [--tune 30]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from gemini.errors import SpecError
from gemini.simulate.runner import simulate
from gemini.simulate.scenario import load_scenario


def run_scenario(path: Path, tune_trials: int, jobs: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        scenario = load_scenario(path)
    except SpecError as exc:
        return {"file": path.name, "error": "; ".join(f"{p}: {m}" for p, m in exc.problems)}
    out: dict[str, Any] = {"file": path.name}
    try:
        out.update(simulate(scenario).to_dict())
        if tune_trials and scenario.policies:
            from gemini.simulate.tuner import tune

            res = tune(scenario, trials=tune_trials, seed=seed, jobs=jobs)
            out["tune"] = res.to_dict()
    except Exception as exc:  # one scenario never stops the suite
        out["error"] = f"{type(exc).__name__}: {exc}"
    out["suiteSeconds"] = round(time.perf_counter() - started, 2)
    return out


def _fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "# Simulator benchmark suite",
        "",
        "Every scenario in `simulations/` replayed through the engine (`gemini simulate`).",
        "`x oracle` is capacity-hours / the oracle's (perfect foresight, no start-up lag, never",
        "violating); violation minutes count steps where load > ready capacity x slo.maxUtilization",
        "(queues with `maxAgeSeconds`: also when the oldest unacked message is older).",
        "Traces are read in place from `../shared/traces/`; see `docs/simulator.md` for the",
        "caveats (NASA outage excluded, NYC taxi DST artefact clipped).",
        "",
        "| scenario | run | kind | capacity-hours | x oracle | violation min | share | "
        "scale events | flaps | max | mean |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for res in results:
        if "error" in res and "results" not in res:
            lines.append(f"| {res['file']} | ERROR: {res['error']} | | | | | | | | | |")
            continue
        for r in res.get("results", []):
            lines.append(
                f"| {res['scenario']} | {r['name']} | {r['kind']} | {_fmt(r['capacityHours'], 1)} "
                f"| {_fmt(r.get('oracleRatio'))} | {_fmt(r['sloViolationMinutes'], 1)} "
                f"| {_fmt(r['sloViolationShare'], 4)} | {r['scaleEvents']} | {r['flaps']} "
                f"| {r['maxReplicas']} | {_fmt(r['meanReplicas'])} |"
            )
    tuned = [r for r in results if "tune" in r]
    if tuned:
        lines += [
            "",
            "## Tuned policies on held-back data",
            "",
            "The tuner trains on the first part of each trace (`tune.trainFraction`, default 70 %)",
            "and never sees the rest; these are the scores on that held-back rest. The goal is",
            "tuned <= 1.25 x oracle with no more violation minutes than hpa-default. `floor` is",
            "what perfect foresight costs when replicas serve only after the start-up delay",
            "(deployments): no policy without violations is cheaper (see `docs/simulator.md`).",
            "",
            "| scenario | trials (replays) | tuned x oracle | tuned violation min "
            "| hpa-default x oracle | hpa-default violation min | floor x oracle | goal met |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for res in tuned:
            t = res["tune"]
            best, hpa = t["best"]["test"], t["baselines"]["hpa-default"]["test"]
            met = (best.get("oracleRatio") or 99) <= 1.25 and (
                best["sloViolationMinutes"] <= hpa["sloViolationMinutes"]
            )
            floor = (t.get("noViolationFloor") or {}).get("oracleRatio")
            lines.append(
                f"| {t['scenario']} | {t['trials']} ({t.get('replays', '-')}) "
                f"| {_fmt(best.get('oracleRatio'))} "
                f"| {_fmt(best['sloViolationMinutes'], 1)} | {_fmt(hpa.get('oracleRatio'))} "
                f"| {_fmt(hpa['sloViolationMinutes'], 1)} | {_fmt(floor)} "
                f"| {'yes' if met else 'no'} |"
            )
    traded = [r for r in tuned if r["tune"].get("tradeoff")]
    if traded:
        lines += [
            "",
            "## What the budget costs",
            "",
            "The tuned policy replayed with only its first target (or step scale) moved, each",
            "point `value: x oracle / violation minutes` on the held-back part; **bold** is the",
            "tuner's choice (made on the training part alone, at the SLO budget: by default",
            "`tune.sloBudgetFactor` x hpa-default's violation minutes on the training demand",
            "raised by `tune.demandMargin`). The other points are not results of the tuner: they",
            "show how the cost trades against violations near it, and how far the goal is.",
            "",
            "| scenario | parameter | held-back points, ascending | hpa-default |",
            "| --- | --- | --- | ---: |",
        ]
        for res in traded:
            t = res["tune"]
            hpa = t["baselines"]["hpa-default"]["test"]
            cells = []
            for pt in t["tradeoff"]["points"]:
                test = pt["test"]
                cell = (
                    f"{pt['value']:.4g}: {_fmt(test.get('oracleRatio'))} / "
                    f"{_fmt(test['sloViolationMinutes'], 1)}"
                )
                cells.append(f"**{cell}**" if pt["chosen"] else cell)
            lines.append(
                f"| {t['scenario']} | {t['tradeoff']['parameter']} | {' · '.join(cells)} "
                f"| {_fmt(hpa.get('oracleRatio'))} / {_fmt(hpa['sloViolationMinutes'], 1)} |"
            )
    errors = [r for r in results if "error" in r]
    if errors:
        lines += ["", "## Errors", ""] + [f"- {r['file']}: {r['error']}" for r in errors]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("folder", type=Path, nargs="?", default=Path("simulations"))
    ap.add_argument("--out", type=Path, default=None, help="default: FOLDER/results")
    ap.add_argument("--tune", type=int, default=0, help="also tune each scenario (N trials)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", action="append", default=[], help="scenario file stem (repeat)")
    ap.add_argument(
        "--tune-only", action="append", default=[], help="tune only these stems (repeat)"
    )
    args = ap.parse_args(argv)
    out = args.out or args.folder / "results"
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(args.folder.glob("*.yaml"))
    if args.only:
        files = [f for f in files if f.stem in set(args.only)]
    results = []
    for f in files:
        print(f"{f.name} ...", end=" ", flush=True, file=sys.stderr)
        trials = args.tune if not args.tune_only or f.stem in set(args.tune_only) else 0
        res = run_scenario(f, trials, args.jobs, args.seed)
        print(res.get("error", f"{res.get('suiteSeconds')} s"), file=sys.stderr)
        results.append(res)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    print(f"wrote {out / 'results.md'} and {out / 'results.json'}", file=sys.stderr)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
