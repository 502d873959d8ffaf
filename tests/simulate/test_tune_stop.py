"""Stopping a tune early: `--timeout` and Ctrl-C keep the trials that finished.

The Ctrl-C cases run the real `gemini tune` in its own session and send SIGINT to the whole
process group, as a terminal does: the workers ignore it, the parent drops the batch in
progress, scores the best trial so far, writes it and exits 130; with no trial finished it
writes nothing. Either way no worker outlives it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gemini.cli import app
from gemini.simulate.scenario import load_scenario
from gemini.simulate.tuner import TuneInterrupted, _workers, tune
from tests.simulate.helpers import daily_wave, write_scenario

REPO = Path(__file__).resolve().parents[2]


def test_a_time_limit_keeps_the_batches_that_finished(tmp_path: Path) -> None:
    """At least one batch runs; the result is the search of that many trials, told so."""
    sc = load_scenario(write_scenario(tmp_path, tune={"decimate": 2}))
    stopped = tune(sc, trials=50, seed=5, jobs=1, timeout=0, tradeoff=False)
    assert (stopped.trials, stopped.trials_requested, stopped.stopped) == (1, 50, "timeout")
    assert any("stopped after 1 of 50 trials (the time limit of 0 s" in n for n in stopped.notes)
    whole = tune(sc, trials=1, seed=5, jobs=1, tradeoff=False)
    assert stopped.params == whole.params and stopped.replays == whole.replays
    data = stopped.to_dict()
    assert (data["trials"], data["trialsRequested"], data["stopped"]) == (1, 50, "timeout")
    assert "stopped" not in whole.to_dict() and whole.to_dict()["trialsRequested"] == 1


def test_a_time_limit_in_parallel_keeps_one_batch_of_jobs_trials(tmp_path: Path) -> None:
    sc = load_scenario(write_scenario(tmp_path, tune={"decimate": 2}))
    workers = min(2, os.cpu_count() or 1)  # the tuner uses no more workers than cores
    stopped = tune(sc, trials=50, seed=5, jobs=2, timeout=0, tradeoff=False)
    assert (stopped.trials, stopped.stopped) == (workers, "timeout")
    assert stopped.params == tune(sc, trials=workers, seed=5, jobs=2, tradeoff=False).params


def _die(code: int) -> int:
    os._exit(code)


def _square(x: int) -> int:
    return x * x


@pytest.mark.timeout(60)  # without the check, this hangs
def test_a_worker_that_dies_stops_the_tune_instead_of_hanging_it() -> None:
    """A pool never finishes a job whose worker was killed (out of memory): it must say so."""
    with _workers(2) as pool:
        assert pool.map(_square, [1, 2, 3], None) == [1, 4, 9]
        with pytest.raises(RuntimeError, match=r"tune worker process died .*exit code 3"):
            pool.map(_die, [3], None)


def test_a_stop_before_any_trial_finished_has_nothing_to_report(tmp_path: Path) -> None:
    sc = load_scenario(write_scenario(tmp_path, tune={"decimate": 2}))
    stop = threading.Event()
    stop.set()
    with pytest.raises(TuneInterrupted, match="before any trial finished"):
        tune(sc, trials=4, seed=0, jobs=1, stop=stop)


def test_the_cli_takes_a_time_limit(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, tune={"decimate": 2})
    out = tmp_path / "t.json"
    result = CliRunner().invoke(
        app,
        ["tune", str(path), "--trials", "30", "--jobs", "1", "--timeout", "0", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert (data["trials"], data["trialsRequested"], data["stopped"]) == (1, 30, "timeout")
    assert "1 of 30 trials (timeout)" in result.stdout


@dataclass
class Stopped:
    """What a `gemini tune` interrupted with Ctrl-C left: exit code, stderr, stdout."""

    returncode: int
    err: str
    out: str


def _ctrl_c_tune(tmp_path: Path, trials: int, days: int, after: str) -> Stopped:
    """`gemini tune` on a trace of `days` days (two weeks: replays of seconds each), in its own
    session; once its stderr matches `after`, SIGINT to the whole process group, as a terminal
    sends Ctrl-C. Checks that no traceback is printed and that no process of the session (a
    worker) is left behind."""
    path = write_scenario(tmp_path, daily_wave(hours=24 * days))
    outputs = ["--json", str(tmp_path / "t.json"), "--out-policy", str(tmp_path / "best.yaml")]
    with (tmp_path / "stdout").open("w") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gemini", "tune", str(path), "--trials", str(trials), *outputs],
            cwd=REPO,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    # stderr is read by this thread alone, until every process holding the pipe has exited
    err: list[str] = []
    assert proc.stderr is not None
    stream = proc.stderr
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: stream.read(1), "")))
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not re.search(after, "".join(err)):
            assert proc.poll() is None, "".join(err)
            assert time.monotonic() < deadline, f"no {after!r} in {''.join(err)!r}"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    reader.join(timeout=30)
    assert not reader.is_alive(), "a process still holds the tune's stderr"
    stream.close()
    text = "".join(err)
    assert "Traceback" not in text
    deadline = time.monotonic() + 10
    while not _no_process_left(proc.pid):  # the workers are terminated, not orphaned
        assert time.monotonic() < deadline, "a worker outlived the tune"
        time.sleep(0.1)
    return Stopped(proc.returncode, text, (tmp_path / "stdout").read_text())


def _no_process_left(session: int) -> bool:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getsid(int(pid)) == session:
                return False
        except OSError:
            continue
    return True


@pytest.mark.parametrize(
    ("days", "after", "written"),
    [
        pytest.param(14, r" 0/40 ", False, id="before-any-trial-finished"),
        pytest.param(2, r" ([1-9]|[1-3]\d)/40 ", True, id="after-some-trials"),
    ],
)
def test_ctrl_c_keeps_the_trials_done_and_leaves_no_worker(
    tmp_path: Path, days: int, after: str, written: bool
) -> None:
    run = _ctrl_c_tune(tmp_path, 40, days, after)
    text = run.err
    assert run.returncode == 130, text
    if not written:
        assert "interrupted: the search was stopped before any trial finished; nothing" in text
        assert not (tmp_path / "t.json").exists() and not (tmp_path / "best.yaml").exists()
        return
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["stopped"] == "interrupted" and 1 <= data["trials"] < 40
    assert data["trialsRequested"] == 40 and "tradeoff" not in data
    assert f"stopped after {data['trials']} of 40 trials (interrupted)" in text
    assert f"{data['trials']} of 40 trials (interrupted)" in run.out
    manifest = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert manifest["kind"] == "ScalingPolicy"
    check = CliRunner().invoke(app, ["validate", str(tmp_path / "best.yaml")])
    assert check.exit_code == 0, check.output


def test_ctrl_c_after_the_search_skips_the_rest_of_the_tradeoff(tmp_path: Path) -> None:
    """Every trial finished; a Ctrl-C while the best is scored or its trade-off replayed still
    stops the command: no trade-off, exit 130, the outputs written whole."""
    run = _ctrl_c_tune(tmp_path, 2, 4, r" 2/2 ")
    text = run.err
    assert run.returncode == 130, text
    data = json.loads((tmp_path / "t.json").read_text())
    assert (data["trials"], data["stopped"]) == (2, "interrupted")
    assert "tradeoff" not in data
    assert "the trade-off was skipped: the tune was interrupted" in text
    assert not list(tmp_path.glob(".*.part"))
    assert yaml.safe_load((tmp_path / "best.yaml").read_text())["kind"] == "ScalingPolicy"
