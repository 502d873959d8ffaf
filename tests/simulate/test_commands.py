"""`gemini simulate` / `gemini tune` end to end: JSON keys, decision log, HTML report, store,
a small tune run whose manifest `gemini validate` accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gemini.cli import app
from gemini.policy.decision import Decision
from gemini.simulate.commands import simulate_command, tune_command
from gemini.simulate.scoring import violations
from tests.conftest import trace_path
from tests.simulate.helpers import CONTRACT_RESULT_KEYS, daily_wave, policy_doc, write_scenario

RESULT_KEYS = CONTRACT_RESULT_KEYS | {"sloViolationShare", "flaps", "oracleRatio"}


def test_simulate_writes_json_log_and_report(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, backend={"pricePerReplicaHour": 0.04})
    out, log, rep = tmp_path / "o.json", tmp_path / "d.jsonl", tmp_path / "r.html"
    result = CliRunner().invoke(
        app,
        ["simulate", str(path), "--json", str(out), "--decisions", str(log), "--report", str(rep)],
    )
    assert result.exit_code == 0, result.output
    assert "hpa-default" in result.output
    data = json.loads(out.read_text())
    assert {"scenario", "steps", "simulatedHours", "wallSeconds", "results"} <= set(data)
    assert data["scenario"] == "synthetic"
    names = [r["name"] for r in data["results"]]
    assert names == ["web", "oracle", "static-peak", "hpa-default"]
    kinds = {r["name"]: r["kind"] for r in data["results"]}
    assert kinds["web"] == "policy" and kinds["oracle"] == "baseline"
    for r in data["results"]:
        assert set(r) >= RESULT_KEYS
        assert r["cost"] == pytest.approx(r["capacityHours"] * 0.04, rel=1e-3)
    lines = log.read_text().splitlines()
    # every tick of both replayed policies (web, hpa-default), each the decision record shape
    assert len(lines) == 2 * data["steps"]
    first = Decision.from_dict(json.loads(lines[0]))
    assert first.policy == "default/web"
    html = rep.read_text()
    assert "Plotly.newPlot" in html and 'id="scores"' in html
    # plotly.js is embedded (offline): no script is loaded from anywhere
    assert "<script src=" not in html and "plotly.js v" in html
    assert html.count('class="plotly-graph-div"') == 4


def test_report_shades_every_violation_episode_up_to_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shades are one rectangle per run of violating steps, the longest first, at most
    `MAX_SHADES` a chart (they were added one by one, which took a minute for 300)."""
    from gemini.simulate import report
    from gemini.simulate.runner import simulate
    from gemini.simulate.scenario import load_scenario

    # a policy capped at one replica: every burst of 3/s over 0.9 capacity is an episode
    burst = [3.0 if i % 10 < 3 else 0.5 for i in range(400)]
    doc = policy_doc(maxReplicas=1)
    path = write_scenario(tmp_path, burst, policies=[doc], baselines=["oracle"])
    outcome = simulate(load_scenario(path))
    run = next(r for r in outcome.runs if r.name == "web")
    episodes = report._episodes(violations(run, outcome.scenario_slo))
    assert len(episodes) == 40

    def rects(fig: object) -> list[tuple[object, object]]:
        return [(s.x0, s.x1) for s in fig.layout.shapes]  # type: ignore[attr-defined]

    shades = rects(report._figure(outcome, run))
    assert len(shades) == 40 and len(set(shades)) == 40
    monkeypatch.setattr(report, "MAX_SHADES", 7)
    assert len(rects(report._figure(outcome, run))) == 7
    # the oracle never violates: no shades
    oracle = next(r for r in outcome.runs if r.name == "oracle")
    assert rects(report._figure(outcome, oracle)) == []


def test_simulate_into_a_decision_store(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    from gemini.store import open_store

    path = write_scenario(tmp_path, [2.0] * 30, baselines=["oracle"])
    url = f"sqlite:///{tmp_path / 'd.db'}"
    assert simulate_command(path, None, None, None, url) == 0
    store = open_store(url)
    try:
        assert store.count("sim/synthetic-web") == 120
    finally:
        store.close()


def test_simulate_with_an_unusable_store_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, [2.0] * 10)
    assert simulate_command(path, None, None, None, "nosuch://x") == 1
    assert "--db" in capsys.readouterr().err


@pytest.mark.parametrize(
    "which", [pytest.param(i, id=n) for i, n in enumerate(["json", "decisions", "report"])]
)
def test_simulate_unwritable_output_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], which: int
) -> None:
    path = write_scenario(tmp_path, [2.0] * 10)
    bad = tmp_path / "no-such-dir" / "out"
    outputs: list[Path | None] = [None, None, None]
    outputs[which] = bad
    assert simulate_command(path, outputs[0], outputs[1], outputs[2], None) == 1
    err = capsys.readouterr().err
    assert f"{bad}: " in err and "cannot write: No such file or directory" in err


def test_simulate_refuses_an_unwritable_output_before_the_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, [2.0] * 10)
    log = tmp_path / "log.jsonl"
    assert simulate_command(path, tmp_path / "no-such-dir" / "x.json", log, None, None) == 1
    assert simulate_command(path, None, log, tmp_path, None) == 1
    out = capsys.readouterr()
    assert f"{tmp_path}: --report: cannot write: Is a directory" in out.err
    assert not log.exists() and out.out == ""  # no replay, no table


def test_simulate_json_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_scenario(tmp_path, [2.0] * 10)
    assert simulate_command(path, Path("-"), None, None, None) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)  # the JSON alone on stdout
    assert {r["name"] for r in data["results"]} >= {"web", "oracle"}
    assert "x oracle" in out.err  # the table went to stderr
    assert not Path("-").exists()


def test_tune_unwritable_output_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, tune={"trainFraction": 0.6})
    bad = tmp_path / "no-such-dir" / "best.yaml"
    assert tune_command(path, 2, 1, None, bad, 1) == 1
    out = capsys.readouterr()
    assert f"{bad}: --out-policy: cannot write: No such file or directory" in out.err
    # refused before the search (it used to fail after it, wasting the run)
    assert "tune synthetic" not in out.out and "trial" not in out.err
    assert tune_command(path, 2, 1, tmp_path, None, 1) == 1
    assert f"{tmp_path}: --json: cannot write: Is a directory" in capsys.readouterr().err


def test_simulate_a_shared_trace_window(tmp_path: Path) -> None:
    nasa = trace_path("nasa-ksc-http-requests-1min.csv")
    path = write_scenario(
        tmp_path,
        trace={"file": str(nasa), "scale": 1 / 60, "end": "1995-07-01T16:00:00Z"},
        backend={"capacityPerReplica": 0.5, "startupSeconds": 120},
    )
    out = tmp_path / "o.json"
    assert simulate_command(path, out, None, None, None) == 0
    data = json.loads(out.read_text())
    oracle = next(r for r in data["results"] if r["name"] == "oracle")
    assert oracle["sloViolationMinutes"] == 0
    assert all(
        r["capacityHours"] >= oracle["capacityHours"]
        for r in data["results"]
        if r["sloViolationMinutes"] == 0
    )


def test_tune_writes_a_valid_manifest_and_json(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, tune={"trainFraction": 0.6})
    out, pol = tmp_path / "t.json", tmp_path / "best.yaml"
    assert tune_command(path, 4, 1, out, pol, 2) == 0
    data = json.loads(out.read_text())
    assert data["scenario"] == "synthetic" and data["trials"] == 4
    assert set(data["best"]) >= {"policy", "train", "test"}
    assert data["best"]["policy"]["kind"] == "ScalingPolicy"
    for name in ("hpa-default", "oracle"):
        assert set(data["baselines"][name]) == {"train", "test"}
        assert {"capacityHours", "sloViolationMinutes"} <= set(data["baselines"][name]["test"])
    assert {"capacityHours", "sloViolationMinutes"} <= set(data["best"]["test"])
    floor = data["noViolationFloor"]  # what a deployment's start-up costs on the held-back part
    assert floor["leadSeconds"] == 60 and floor["oracleRatio"] >= 1.0
    # the held-back part is scored separately: the splits cover different spans
    assert data["best"]["train"]["capacityHours"] != data["best"]["test"]["capacityHours"]
    manifest = yaml.safe_load(pol.read_text())
    assert manifest["apiVersion"] == "autoscaling.gemini.dev/v1alpha1"
    result = CliRunner().invoke(app, ["validate", str(pol)])
    assert result.exit_code == 0, result.output


def test_tune_reports_the_tradeoff_around_the_chosen_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the SLO budget costs: the tuned policy replayed with only its first target moved,
    on both parts; the chosen point is the tuned policy's own scores."""
    path = write_scenario(tmp_path, tune={"trainFraction": 0.6})
    out = tmp_path / "t.json"
    assert tune_command(path, 3, 1, out, None, 2) == 0
    data = json.loads(out.read_text())
    t = data["tradeoff"]
    assert t["parameter"] == "target"
    values = [p["value"] for p in t["points"]]
    assert values == sorted(set(values)) and len(values) >= 3
    [chosen] = [p for p in t["points"] if p["chosen"]]
    assert chosen["factor"] == 1.0
    assert chosen["value"] == data["best"]["params"]["target"]
    for split in ("train", "test"):
        for k in ("capacityHours", "sloViolationMinutes", "oracleRatio"):
            assert chosen[split][k] == data["best"][split][k]
    # a lower target buys capacity: the lowest one costs at least the highest one
    low, high = t["points"][0], t["points"][-1]
    assert low["train"]["capacityHours"] >= high["train"]["capacityHours"]
    printed = capsys.readouterr().out
    assert "trade-off: the tuned policy with only target changed" in printed
    assert f"{chosen['value']:g} *" in printed


def test_tune_says_when_no_trial_kept_the_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # load jumps 1 -> 40 every 10 minutes and a replica takes 60 s to start: every policy
    # violates, so a budget of 0 minutes cannot be kept
    values = [40.0 if (i // 10) % 2 else 1.0 for i in range(240)]
    path = write_scenario(tmp_path, values, tune={"sloBudgetMinutes": 0})
    out = tmp_path / "t.json"
    assert tune_command(path, 2, 0, out, None, 1) == 0
    data = json.loads(out.read_text())
    assert data["feasible"] is False
    searched = data["best"]["trainWithMargin"]["sloViolationMinutes"]
    assert searched > 0
    err = capsys.readouterr().err
    assert f"{path}: warning: no trial kept the SLO budget of 0.0 violation minutes" in err
    assert "training demand x 1.05" in err and f"({searched:g} minutes)" in err


def test_tune_is_seeded(tmp_path: Path) -> None:
    from gemini.simulate.scenario import load_scenario
    from gemini.simulate.tuner import tune

    sc = load_scenario(write_scenario(tmp_path, tune={"decimate": 4}))
    a = tune(sc, trials=3, seed=7, jobs=1)
    b = tune(sc, trials=3, seed=7, jobs=1)
    assert a.params == b.params
    assert a.train_step == 60.0


def test_tune_rejects_unknown_parameter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_scenario(tmp_path, tune={"space": {"warpFactor": {"low": 1, "high": 2}}})
    assert tune_command(path, 2, 0, None, None, 1) == 1
    assert "tune.space.warpFactor: unknown parameter" in capsys.readouterr().err


def test_suite_runs_every_scenario_and_survives_a_broken_one(tmp_path: Path) -> None:
    from gemini.simulate.suite import main

    write_scenario(tmp_path, [3.0] * 30)
    (tmp_path / "broken.yaml").write_text("name: broken\ntrace: {file: nope.csv}\n")
    out = tmp_path / "results"
    assert main([str(tmp_path), "--out", str(out)]) == 1  # the broken one is reported
    data = json.loads((out / "results.json").read_text())
    assert {r["file"] for r in data} == {"broken.yaml", "scenario.yaml"}
    good = next(r for r in data if r["file"] == "scenario.yaml")
    assert [r["name"] for r in good["results"]] == ["web", "oracle", "static-peak", "hpa-default"]
    md = (out / "results.md").read_text()
    assert "| synthetic | oracle | baseline |" in md and "broken.yaml" in md


def test_suite_tunes_and_tables_trials_with_their_replays(tmp_path: Path) -> None:
    from gemini.simulate.suite import main

    write_scenario(tmp_path, tune={"decimate": 2})
    out = tmp_path / "results"
    assert main([str(tmp_path), "--out", str(out), "--tune", "2", "--jobs", "1"]) == 0
    tuned = json.loads((out / "results.json").read_text())[0]["tune"]
    assert tuned["trials"] == 2 and tuned["replays"] >= 2 and tuned["fitTarget"] is True
    md = (out / "results.md").read_text().splitlines()
    row = next(line for line in md if "| 2 (" in line)
    assert row.startswith(f"| synthetic | 2 ({tuned['replays']}) | ")
    cost = next(line for line in md if line.startswith("| synthetic | target | "))
    chosen = next(p for p in tuned["tradeoff"]["points"] if p["chosen"])
    assert f"**{chosen['value']:.4g}: " in cost and cost.count(" · ") >= 2


def test_tune_starts_from_hpa_defaults_so_it_never_loses_to_them_on_train(tmp_path: Path) -> None:
    from gemini.simulate.scenario import load_scenario
    from gemini.simulate.tuner import tune

    sc = load_scenario(write_scenario(tmp_path, tune={"decimate": 2, "sloBudgetFactor": 1}))
    res = tune(sc, trials=2, seed=3, jobs=1)
    hpa = res.baselines["hpa-default"]["train"]
    if res.feasible:
        assert res.train.capacity_hours <= hpa.capacity_hours + 1e-9


def test_simulate_reports_progress_without_changing_the_replay(tmp_path: Path) -> None:
    """`progress(done, total)` counts every replayed step (the policy and hpa-default; the other
    baselines are computed directly), a few thousand at a time; the runs are the same."""
    from gemini.simulate.replay import PROGRESS_STEPS
    from gemini.simulate.runner import simulate
    from gemini.simulate.scenario import load_scenario

    sc = load_scenario(write_scenario(tmp_path, daily_wave(hours=24)))
    calls: list[tuple[int, int]] = []
    shown = simulate(sc, progress=lambda done, total: calls.append((done, total)))
    plain = simulate(sc)
    steps = len(plain.grid)
    assert steps > PROGRESS_STEPS  # several calls per run
    assert {total for _, total in calls} == {2 * steps}
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 2 * steps and len(done) >= 4
    assert [r.count for r in shown.runs] == [r.count for r in plain.runs]
    assert [s.to_dict() for s in shown.scores] == [s.to_dict() for s in plain.scores]


def test_simulate_shows_a_progress_bar_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal only: a script reading stderr gets the problems alone."""
    import gemini.simulate.commands as commands

    monkeypatch.setattr(commands, "PROGRESS_DELAY_SECONDS", 0.0)  # shown at once
    path = write_scenario(tmp_path)
    assert simulate_command(path, None, None, None, None) == 0
    assert "simulate synthetic" not in capsys.readouterr().err  # not a terminal
    monkeypatch.setattr(commands, "_interactive", lambda: True)
    assert simulate_command(path, None, None, None, None) == 0
    captured = capsys.readouterr()
    assert "simulate synthetic: 100%" in captured.err
    assert "simulate synthetic" not in captured.out  # the table alone on stdout
