"""`gemini simulate` and `gemini tune`: the shell around the simulator (files, console, store).

Owns argument handling, error lines (`FILE: field: message` on stderr, exit 1), the console
table, the JSON/JSONL/HTML outputs and the optional decision store. Must not import
`gemini.metrics` sources or cloud libraries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gemini.errors import SpecError
from gemini.policy.decision import Decision

if TYPE_CHECKING:
    from gemini.simulate.tuner import TuneResult

# `gemini simulate` shows a progress bar once a replay has run this long
PROGRESS_DELAY_SECONDS = 2.0


def _interactive() -> bool:
    """Whether stderr is a terminal (someone is watching)."""
    return sys.stderr.isatty()


def _problems(path: Path, exc: SpecError) -> int:
    for where, message in exc.problems:
        print(f"{path}: {where}: {message}" if where else f"{path}: {message}", file=sys.stderr)
    return 1


def print_table(data: dict[str, Any], title: str, file: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    cols = [
        ("name", "name"),
        ("kind", "kind"),
        ("capacityHours", "cap-hours"),
        ("oracleRatio", "x oracle"),
        ("cost", "cost"),
        ("sloViolationMinutes", "viol. min"),
        ("scaleEvents", "events"),
        ("flaps", "flaps"),
        ("maxReplicas", "max"),
        ("meanReplicas", "mean"),
    ]
    for _, label in cols:
        table.add_column(label, justify="right" if label not in ("name", "kind") else "left")
    for r in data["results"]:
        table.add_row(*["-" if r.get(k) is None else str(r.get(k)) for k, _ in cols])
    Console(file=file or sys.stdout, width=120).print(table)


def print_tradeoff(data: dict[str, Any], file: Any = None) -> None:
    """What the SLO budget costs: the tuned policy with only its first target moved."""
    from rich.console import Console
    from rich.table import Table

    t = data.get("tradeoff")
    if not t:
        return
    table = Table(
        title=f"trade-off: the tuned policy with only {t['parameter']} changed (* = chosen)"
    )
    for label in (
        t["parameter"],
        "x chosen",
        "train x oracle",
        "train viol. min",
        "held-back x oracle",
        "held-back viol. min",
    ):
        table.add_column(label, justify="right")
    for p in t["points"]:
        table.add_row(
            f"{p['value']:g}" + (" *" if p["chosen"] else ""),
            f"{p['factor']:g}" if p["factor"] is not None else "-",
            *(
                "-" if p[split][k] is None else f"{p[split][k]:g}"
                for split in ("train", "test")
                for k in ("oracleRatio", "sloViolationMinutes")
            ),
        )
    Console(file=file or sys.stdout, width=120).print(table)


def _stdout(path: Path | None) -> bool:
    """`-` as an output path: the output goes to stdout (and the tables to stderr)."""
    return path is not None and str(path) == "-"


class _StoreWriter:
    """Buffers decisions into the store under their simulation keys (`sim/<scenario>-<policy>`)."""

    def __init__(self, store: Any, keys: dict[str, str], batch: int = 5000) -> None:
        self.store = store
        self.keys = keys  # the replayed policy's key -> its key in the store
        self.batch = batch
        self.buf: list[Decision] = []
        self.written = 0

    def add(self, decision: Decision) -> None:
        key = self.keys.get(decision.policy)
        if key is not None:
            decision = dataclasses.replace(decision, policy=key)
        self.buf.append(decision)
        if len(self.buf) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.store.write_many(self.buf)
            self.written += len(self.buf)
            self.buf = []


def _open_store(url: str) -> Any:
    try:
        from gemini.store import open_store
    except ImportError as exc:
        raise RuntimeError(f"--db: the decision store is unavailable ({exc})") from None
    return open_store(url)


def capped_policies(outcome: Any) -> list[str]:
    """Policies whose maxReplicas is below what the load needs at the peak: they cannot meet
    the SLO there, and may cost less than the oracle (which never violates). The backend's floor
    (Bigtable storage) is not load: the engine keeps a policy at the floor even above its
    maxReplicas, so a policy is capped only when both are below the load's peak."""
    from gemini.simulate.runner import hpa_default_policy, slo_of
    from gemini.simulate.scoring import oracle_counts

    sc = outcome.scenario
    counts = oracle_counts(outcome.grid, sc.model.capacity_per_replica, slo_of(sc))
    peak = max(counts, default=0)
    floor = sc.model.floor
    out = [
        f"policy {p.metadata.name}: spec.maxReplicas {p.spec.max_replicas} is below the {peak} "
        "the oracle needs at the peak: it cannot meet the SLO there and may cost less than "
        "the oracle"
        for p in sc.policies
        if max(p.spec.max_replicas, floor) < peak
    ]
    if "hpa-default" in sc.spec.baselines:
        cap = hpa_default_policy(sc, outcome.grid).spec.max_replicas
        if max(cap, floor) < peak:
            why = (
                "the scenario's maxReplicas"
                if sc.spec.max_replicas is not None
                else "the most a manifest allows"
            )
            out.append(
                f"baseline hpa-default: maxReplicas {cap} ({why}) is below the {peak} the "
                "oracle needs at the peak: it cannot meet the SLO there"
            )
    return out


def simulate_command(
    scenario: Path,
    json_out: Path | None,
    decisions: Path | None,
    report: Path | None,
    db: str | None,
) -> int:
    from gemini.simulate.runner import simulate
    from gemini.simulate.scenario import load_scenario

    try:
        sc = load_scenario(scenario)
    except SpecError as exc:
        return _problems(scenario, exc)
    for note in sc.notes:
        print(f"{scenario}: note: {note}", file=sys.stderr)
    to_stdout = _stdout(json_out)
    for out, flag in ((None if to_stdout else json_out, "--json"), (report, "--report")):
        # before the replay, not after it: a typo in a path would waste a long run
        problem = None if out is None else _unwritable(out)
        if problem:
            print(f"{out}: {flag}: cannot write: {problem}", file=sys.stderr)
            return 1
    store = None
    if db:
        try:
            store = _open_store(db)
        except Exception as exc:
            print(f"{scenario}: --db: cannot open decision store {db!r}: {exc}", file=sys.stderr)
            return 1
    writer = None
    if store is not None:
        from gemini.simulate.runner import store_key

        keys = {p.key: store_key(sc, p.metadata.name) for p in sc.policies}
        keys["default/hpa-default"] = store_key(sc, "hpa-default")  # the baseline's manifest
        writer = _StoreWriter(store, keys)
    try:
        fh = decisions.open("w") if decisions is not None else None
    except OSError as exc:
        print(f"{decisions}: --decisions: cannot write: {exc.strerror or exc}", file=sys.stderr)
        if store is not None:
            store.close()
        return 1
    hooks: list[Callable[[Decision], None]] = []
    if fh is not None:
        dumps = json.dumps
        write = fh.write

        def log(d: Decision) -> None:
            write(dumps(d.to_dict(), separators=(",", ":")) + "\n")

        hooks.append(log)
    if writer is not None:
        hooks.append(writer.add)
    on_decision: Callable[[Decision], None] | None = None
    if len(hooks) == 1:
        on_decision = hooks[0]
    elif hooks:

        def on_decision(d: Decision) -> None:
            for h in hooks:
                h(d)

    from tqdm import tqdm  # type: ignore[import-untyped]

    # on a terminal's stderr, and only for a replay long enough to wait for (a script reading
    # stderr gets the problems alone)
    bar = tqdm(
        total=0,
        desc=f"simulate {sc.name}",
        unit="step",
        unit_scale=True,
        delay=PROGRESS_DELAY_SECONDS,
        file=sys.stderr,
        disable=not _interactive(),
    )

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        outcome = simulate(sc, on_decision=on_decision, progress=progress)
        if writer is not None:
            writer.flush()
    except Exception as exc:
        print(f"{scenario}: simulation failed: {exc}", file=sys.stderr)
        return 1
    finally:
        bar.close()
        if fh is not None:
            fh.close()
        if store is not None:
            store.close()
    data = outcome.to_dict()
    warnings = capped_policies(outcome)
    if all(outcome.grid.masked):
        warnings.append(
            "every step is inside a long gap or an exclude window: no step is scored, so no run "
            "has violations and the oracle holds only the backend's floor"
        )
    if warnings:
        data["warnings"] = warnings
    # `--json -`: the JSON alone on stdout, the table on stderr
    print_table(
        data,
        f"{data['scenario']}: {data['steps']} steps, {data['wallSeconds']} s",
        sys.stderr if to_stdout else sys.stdout,
    )
    for w in warnings:
        print(f"{scenario}: warning: {w}", file=sys.stderr)
    try:
        if to_stdout:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
        elif json_out is not None:
            json_out.write_text(json.dumps(data, indent=2) + "\n")
        if report is not None:
            from gemini.simulate.report import write_report

            write_report(outcome, report)
    except OSError as exc:
        print(f"{exc.filename}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if writer is not None:
        print(f"stored {writer.written} decisions in {db}")
    return 0


def _unwritable(path: Path) -> str | None:
    """Why a file cannot be written at `path` (None: it can), without creating it."""
    if path.is_dir():
        return "Is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else "Permission denied"
    if not path.parent.is_dir():
        return "No such file or directory"
    return None if os.access(path.parent, os.W_OK) else "Permission denied"


# the shell's convention for a command stopped by Ctrl-C (128 + SIGINT)
INTERRUPTED = 130


@contextlib.contextmanager
def _on_sigint(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """`handler` for SIGINT inside the block, the previous one restored after it. Only the main
    thread can set handlers; elsewhere Ctrl-C keeps its usual meaning."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def tune_command(
    scenario: Path,
    trials: int,
    seed: int,
    json_out: Path | None,
    out_policy: Path | None,
    jobs: int,
    timeout: float | None = None,
) -> int:
    from gemini.simulate.scenario import load_scenario
    from gemini.simulate.tuner import TuneInterrupted, tune

    try:
        sc = load_scenario(scenario)
    except SpecError as exc:
        return _problems(scenario, exc)
    for note in sc.notes:
        print(f"{scenario}: note: {note}", file=sys.stderr)
    if _stdout(json_out) and _stdout(out_policy):
        print("--json - and --out-policy -: only one output can go to stdout", file=sys.stderr)
        return 2
    if (
        json_out is not None
        and out_policy is not None
        and not _stdout(json_out)
        and json_out.resolve() == out_policy.resolve()
    ):
        print(f"{json_out}: --json and --out-policy name the same file", file=sys.stderr)
        return 2
    for out, flag in ((json_out, "--json"), (out_policy, "--out-policy")):
        # before the search, not after it: a typo in a path would waste the whole run
        problem = None if out is None or _stdout(out) else _unwritable(out)
        if problem:
            print(f"{out}: {flag}: cannot write: {problem}", file=sys.stderr)
            return 1
    if not sc.policies:
        print(
            f"{scenario}: policies: tune needs at least one policy to start from", file=sys.stderr
        )
        return 1
    if timeout is not None and not timeout >= 0:  # NaN too
        print(f"--timeout: {timeout:g} is not a number of seconds >= 0", file=sys.stderr)
        return 2
    stop = threading.Event()

    def interrupted(signum: int, frame: Any) -> None:
        # the first Ctrl-C stops the search and keeps what it found; a second one aborts.
        # os.write, not print: the handler may run while the progress bar is writing
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.write(
            sys.stderr.fileno(),
            f"\n{scenario}: interrupted: scoring the best trial so far (Ctrl-C again to "
            "abort)\n".encode(),
        )

    try:
        with _on_sigint(interrupted):
            result = tune(
                sc, trials=trials, seed=seed, jobs=jobs, progress=True, timeout=timeout, stop=stop
            )
            code = _report_tune(scenario, result, trials, seed, json_out, out_policy)
    except SpecError as exc:
        return _problems(scenario, exc)
    except TuneInterrupted as exc:
        print(f"{scenario}: interrupted: {exc}; nothing written", file=sys.stderr)
        return INTERRUPTED
    except KeyboardInterrupt:
        print(f"{scenario}: aborted (each output file is whole or untouched)", file=sys.stderr)
        return INTERRUPTED
    return INTERRUPTED if code == 0 and stop.is_set() else code


def _write_whole(path: Path, text: str) -> None:
    """`text` into `path` whole or not at all (a Ctrl-C or a full disk leaves the old file)."""
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        part.write_text(text)
        os.replace(part, path)
    except OSError as exc:  # named after the file asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        part.unlink(missing_ok=True)


def _report_tune(
    scenario: Path,
    result: TuneResult,
    trials: int,
    seed: int,
    json_out: Path | None,
    out_policy: Path | None,
) -> int:
    """The tune's notes, tables and output files."""
    from gemini.simulate.tuner import manifest_yaml

    for note in result.notes:
        print(f"{scenario}: note: {note}", file=sys.stderr)
    data = result.to_dict()
    rows = []
    for name, part in (
        ("tuned", data["best"]),
        ("hpa-default", data["baselines"]["hpa-default"]),
        ("oracle", data["baselines"]["oracle"]),
    ):
        for split in ("train", "test"):
            r = dict(part[split])
            r["name"] = name
            r["kind"] = split
            rows.append(r)
    done = (
        f"{result.trials} trials"
        if result.stopped is None
        else f"{result.trials} of {trials} trials ({result.stopped})"
    )
    # with an output on stdout (`-`), the tables go to stderr
    tables = sys.stderr if _stdout(json_out) or _stdout(out_policy) else sys.stdout
    print_table({"results": rows}, f"tune {data['scenario']}: {done}, seed {seed}", tables)
    print_tradeoff(data, tables)
    if not result.feasible:
        searched = data["best"]["trainWithMargin"]["sloViolationMinutes"]
        print(
            f"{scenario}: warning: no trial kept the SLO budget of {data['sloBudgetMinutes']} "
            f"violation minutes (on the training demand x {1 + result.margin:g}); the best "
            f"policy is the one that came closest ({searched:g} minutes)",
            file=sys.stderr,
        )
    outputs: list[tuple[Path | None, str, Callable[[], str]]] = [
        (json_out, "--json", lambda: json.dumps(data, indent=2) + "\n"),
        (out_policy, "--out-policy", lambda: manifest_yaml(result.policy)),
    ]
    for path, flag, text in outputs:
        if path is None:
            continue
        if _stdout(path):
            sys.stdout.write(text())
            continue
        try:
            _write_whole(path, text())
        except OSError as exc:
            print(f"{exc.filename}: {flag}: cannot write: {exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0
