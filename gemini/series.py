"""Time-series values: samples, observations, and the trace file format.

A trace file is CSV with header `timestamp,value` (ISO-8601 UTC, strictly increasing, gaps
allowed) or Parquet with the same two columns. Owns parsing and writing that format; imports no
network or database library (pyarrow is imported lazily, only for Parquet files).
"""

from __future__ import annotations

import bisect
import csv
import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

from gemini.clock import iso, parse_iso, utc
from gemini.errors import SpecError
from gemini.values import fast_init


@fast_init
@dataclass(frozen=True, slots=True)
class Sample:
    """One value at one instant (aware UTC)."""

    at: datetime
    value: float


@fast_init
@dataclass(frozen=True, slots=True)
class Observation:
    """What a metric source returned for one metric at one read.

    Either `samples` (oldest first, never after the read time) or an `error` with a stable
    `error_kind`. A source never raises for a failed read; it returns an Observation with an error.
    """

    metric: str
    samples: tuple[Sample, ...] = ()
    error: str | None = None
    error_kind: str | None = None
    extra: tuple[tuple[str, float], ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.samples)

    @property
    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    @staticmethod
    def failed(metric: str, kind: str, message: str) -> Observation:
        return Observation(metric=metric, error=message, error_kind=kind)

    @staticmethod
    def of(metric: str, at: datetime, value: float) -> Observation:
        return Observation(metric=metric, samples=(Sample(utc(at), float(value)),))


# an interval between samples longer than this many median intervals is a gap: held, but not
# scored by the simulator (`trace.maxGapSeconds` sets the length instead)
LONG_GAP_INTERVALS = 3


def long_gap(spacing: float, max_gap: float | None = None) -> float:
    """The interval between samples beyond which it is a gap: `max_gap` when given, else
    LONG_GAP_INTERVALS x `spacing` (a median sample interval)."""
    return LONG_GAP_INTERVALS * spacing if max_gap is None else max_gap


@dataclass(frozen=True, slots=True)
class Trace:
    """A recorded series: parallel, strictly increasing timestamps (epoch seconds) and values."""

    times: tuple[float, ...]
    values: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.times)

    def index_at_or_before(self, t: float) -> int:
        """Index of the last sample with time <= t, or -1."""
        return bisect.bisect_right(self.times, t) - 1

    def between(self, start: float, end: float) -> list[Sample]:
        """Samples with start < time <= end, oldest first."""
        lo = bisect.bisect_right(self.times, start)
        hi = bisect.bisect_right(self.times, end)
        return [
            Sample(datetime.fromtimestamp(self.times[i], UTC), self.values[i])
            for i in range(lo, hi)
        ]

    def spacing(self) -> float:
        """The median interval between samples (a replay grid covers the last sample for this
        long)."""
        return statistics.median(b - a for a, b in itertools.pairwise(self.times))

    def sliced(self, start: float | None, end: float | None) -> Trace:
        lo = 0 if start is None else bisect.bisect_left(self.times, start)
        hi = len(self.times) if end is None else bisect.bisect_right(self.times, end)
        return Trace(self.times[lo:hi], self.values[lo:hi])


def _check_and_build(
    rows: Iterable[tuple[int, object, object]], source: str, *, nonnegative: bool = False
) -> Trace:
    """Rows are (row number, timestamp, value); the row number is the file's line (header: 1)."""
    times: list[float] = []
    values: list[float] = []
    last = -math.inf
    for lineno, ts, raw in rows:
        when: datetime | None = None
        if isinstance(ts, datetime):
            when = utc(ts)
        elif isinstance(ts, date):  # a Parquet date column: midnight UTC
            when = datetime.combine(ts, time(), UTC)
        elif isinstance(ts, str):
            try:
                when = parse_iso(ts)
            except ValueError:
                when = None
        if when is None:
            raise SpecError(
                f"{source}: row {lineno}: bad timestamp {ts!r}",
                [(f"row {lineno}.timestamp", f"not an ISO-8601 timestamp: {ts!r}")],
            )
        try:
            if raw is None or isinstance(raw, bool):
                raise TypeError(raw)
            if isinstance(raw, str) and "_" in raw:
                # Python reads 1_000 as 1000; a CSV writer never means that (1_5 is a typo)
                raise ValueError(raw)
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise SpecError(
                f"{source}: row {lineno}: bad value {raw!r}",
                [(f"row {lineno}.value", f"not a number: {raw!r}")],
            ) from None
        if not math.isfinite(value):
            raise SpecError(
                f"{source}: row {lineno}: value is not finite",
                [(f"row {lineno}.value", f"not finite: {raw!r}")],
            )
        if nonnegative and value < 0:
            raise SpecError(
                f"{source}: row {lineno}: value is negative",
                [(f"row {lineno}.value", f"negative: {raw!r} (load is never below 0)")],
            )
        t = when.timestamp()
        if t <= last:
            raise SpecError(
                f"{source}: row {lineno}: timestamps must be strictly increasing",
                [(f"row {lineno}.timestamp", f"{ts} is not after the previous row")],
            )
        last = t
        times.append(t)
        values.append(value)
    return Trace(tuple(times), tuple(values))


def _parquet_magic(p: Path) -> bool:
    """A Parquet file whatever its name (`.parq`, none): it starts with `PAR1`."""
    try:
        with p.open("rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def read_trace(path: str | Path, *, nonnegative: bool = False) -> Trace:
    """Read a trace file (CSV or Parquet). Raises SpecError naming the row on bad data
    (`nonnegative`: a negative value is bad data too, e.g. for load)."""
    p = Path(path)
    if not p.exists():
        raise SpecError(f"{p}: no such trace file", [("file", f"no such file: {p}")])
    if p.suffix.lower() in {".parquet", ".pq"} or _parquet_magic(p):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(p, columns=["timestamp", "value"])
        ts_arr = table.column("timestamp")
        ts_col: list[object]
        if pa.types.is_timestamp(ts_arr.type):
            # via integers: to_pylist cannot turn nanosecond timestamps (pandas' default) into
            # datetimes; a zone-less timestamp is taken as UTC, like a CSV one without offset
            per = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[ts_arr.type.unit]
            ts_col = [
                None if v is None else datetime.fromtimestamp(v / per, UTC)
                for v in ts_arr.cast(pa.int64()).to_pylist()
            ]
        else:
            ts_col = ts_arr.to_pylist()
        val_col = table.column("value").to_pylist()
        # row numbers as in the CSV form of the same trace (the header is row 1)
        numbered = (
            (i, ts, v) for i, (ts, v) in enumerate(zip(ts_col, val_col, strict=True), start=2)
        )
        return _check_and_build(numbered, str(p), nonnegative=nonnegative)
    try:
        # utf-8-sig: a byte-order mark (spreadsheet exports) is not part of the header
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            names = [h.strip().lower() for h in header[:2]] if header is not None else None
            if header is None or names != ["timestamp", "value"]:
                raise SpecError(
                    f"{p}: header must be 'timestamp,value'",
                    [("header", f"must be 'timestamp,value', got {header!r}")],
                )
            # named columns only: a spreadsheet's trailing empty header cells name nothing
            width = max(i + 1 for i, h in enumerate(header) if h.strip())
            rows = _rows(reader, str(p), width)
            return _check_and_build(rows, str(p), nonnegative=nonnegative)
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{p}: not a UTF-8 text file", [("file", f"not UTF-8 CSV text ({exc.reason})")]
        ) from None


def _shown(row: list[str], limit: int = 80) -> str:
    text = repr(row)
    return text if len(text) <= limit else f"{text[: limit - 5]} ...]"


def _rows(reader: Iterable[list[str]], source: str, width: int) -> Iterable[tuple[int, str, str]]:
    end = 1  # the line the previous row ended on (the header's)
    for row in reader:
        # a row starts on the line after the previous one ended (a quoted cell may span lines)
        lineno, end = end + 1, getattr(reader, "line_num", end + 1)
        if not row or not any(cell.strip() for cell in row):
            continue
        if end > lineno and any("\n" in cell or "\r" in cell for cell in row[:2]):
            raise SpecError(
                f"{source}: row {lineno}: a quoted cell runs over {end - lineno + 1} lines",
                [
                    (
                        f"row {lineno}",
                        f"a quote opened here closes {end - lineno} lines later (or never): "
                        f"{_shown(row)}",
                    )
                ],
            )
        # more cells than the header has (e.g. a decimal comma, 1,5) would silently read the
        # wrong value; empty trailing cells (spreadsheet exports) are fine
        if len(row) < 2 or any(cell.strip() for cell in row[width:]):
            raise SpecError(
                f"{source}: row {lineno}: expected 'timestamp,value'",
                [(f"row {lineno}", f"expected 2 columns (timestamp,value), got {_shown(row)}")],
            )
        yield lineno, row[0], row[1]


def write_trace(path: str | Path, samples: Sequence[Sample]) -> None:
    """Write samples (any order; duplicates dropped) as a CSV trace."""
    seen: dict[float, Sample] = {}
    for s in samples:
        seen[utc(s.at).timestamp()] = s
    ordered = [seen[k] for k in sorted(seen)]
    with Path(path).open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "value"])
        for s in ordered:
            writer.writerow([iso(s.at), repr(float(s.value))])
