"""SQL `DecisionStore` over SQLAlchemy Core: SQLite (default, WAL) and PostgreSQL (psycopg 3).

Owns the table definitions, the versioned migrations and the queries. Times are stored as integer
microseconds since the Unix epoch (`at_us`): exact, portable, and cheap to index and compare.

Migrations: a one-row `gemini_schema` table holds the version; `MIGRATIONS[i]` moves the schema
from version i to i+1 inside one transaction that first takes a lock (PostgreSQL advisory lock,
SQLite `BEGIN IMMEDIATE`), so several controller replicas starting at once migrate exactly once.
We do not use Alembic: the store migrates itself at open time on two dialects, from inside the
installed package, with no alembic.ini / env.py / script directory to ship; a short list of
functions with a tested upgrade path from every previous version is all that needs.
Must not import `gemini.metrics`, `gemini.scalers` or `gemini.dashboard`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from gemini.clock import utc
from gemini.policy.decision import Decision
from gemini.store import PolicySummary, RecordStore, StoreError, health_of, split_policy

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_ADVISORY_KEY = 0x67656D696E69  # "gemini"

SCHEMA_VERSION = 2


def to_us(dt: datetime) -> int:
    return (utc(dt) - EPOCH) // _US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY = rowid

metadata = sa.MetaData()

schema_table = sa.Table("gemini_schema", metadata, sa.Column("version", sa.Integer, nullable=False))

decisions_table = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("policy", sa.String(512), nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Column("applied", sa.Boolean, nullable=False),
    sa.Column("mode", sa.String(32), nullable=False),
    sa.Column("current", sa.Integer, nullable=False),
    sa.Column("desired", sa.Integer, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    # version 2
    sa.Column("namespace", sa.String(253)),
    sa.Column("name", sa.String(253)),
    sa.Column("target", sa.String(512)),
    sa.Column("min_replicas", sa.Integer),
    sa.Column("max_replicas", sa.Integer),
)

policies_table = sa.Table(
    "policies",
    metadata,
    sa.Column("policy", sa.String(512), primary_key=True),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("name", sa.String(253), nullable=False),
    sa.Column("target", sa.String(512)),
    sa.Column("mode", sa.String(32), nullable=False),
    sa.Column("current", sa.Integer, nullable=False),
    sa.Column("desired", sa.Integer, nullable=False),
    sa.Column("min_replicas", sa.Integer, nullable=False),
    sa.Column("max_replicas", sa.Integer, nullable=False),
    sa.Column("last_at_us", sa.BigInteger, nullable=False),
    sa.Column("last_reasons", sa.Text, nullable=False),
    sa.Column("applied", sa.Boolean, nullable=False),
    sa.Column("health", sa.String(32), nullable=False),
    sa.Column("decisions", sa.BigInteger, nullable=False),
)


# ---------------------------------------------------------------- migrations


def _v0_to_v1(conn: Connection) -> None:
    """The first schema: decisions with the indexed columns and the JSON record."""
    v1 = sa.MetaData()
    t = sa.Table(
        "decisions",
        v1,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("policy", sa.String(512), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("applied", sa.Boolean, nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("current", sa.Integer, nullable=False),
        sa.Column("desired", sa.Integer, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
    )
    sa.Index("ix_decisions_policy_at", t.c.policy, t.c.at_us, t.c.id)
    v1.create_all(conn)


def _v1_to_v2(conn: Connection) -> None:
    """Target/namespace/name/min/max columns, an all-policies time index, and a per-policy
    summary table (so the overview never scans the decisions), backfilled from the records."""
    for col, typ in [
        ("namespace", "VARCHAR(253)"),
        ("name", "VARCHAR(253)"),
        ("target", "VARCHAR(512)"),
        ("min_replicas", "INTEGER"),
        ("max_replicas", "INTEGER"),
    ]:
        conn.exec_driver_sql(f"ALTER TABLE decisions ADD COLUMN {col} {typ}")
    conn.exec_driver_sql("CREATE INDEX ix_decisions_at ON decisions (at_us, id)")
    policies_table.create(conn)
    d = decisions_table.c
    rows = conn.execute(sa.select(d.id, d.record)).all()
    for row_id, record in rows:
        dec = Decision.from_dict(json.loads(record))
        ns, name = split_policy(dec.policy)
        conn.execute(
            decisions_table.update()
            .where(d.id == row_id)
            .values(
                namespace=ns,
                name=name,
                target=dec.target,
                min_replicas=dec.min_replicas,
                max_replicas=dec.max_replicas,
            )
        )
    newest = (
        sa.select(d.policy, sa.func.max(d.at_us).label("m"), sa.func.count().label("n"))
        .group_by(d.policy)
        .subquery()
    )
    for policy, at_us, n in conn.execute(sa.select(newest.c.policy, newest.c.m, newest.c.n)):
        record = conn.execute(
            sa.select(d.record)
            .where(d.policy == policy, d.at_us == at_us)
            .order_by(d.id.desc())
            .limit(1)
        ).scalar_one()
        conn.execute(
            policies_table.insert().values(_summary_row(Decision.from_dict(json.loads(record)), n))
        )


MIGRATIONS: list[Callable[[Connection], None]] = [_v0_to_v1, _v1_to_v2]
assert len(MIGRATIONS) == SCHEMA_VERSION


def _summary_row(d: Decision, count: int) -> dict[str, Any]:
    ns, name = split_policy(d.policy)
    return {
        "policy": d.policy,
        "namespace": ns,
        "name": name,
        "target": d.target,
        "mode": d.mode,
        "current": d.current,
        "desired": d.desired,
        "min_replicas": d.min_replicas,
        "max_replicas": d.max_replicas,
        "last_at_us": to_us(d.at),
        "last_reasons": ",".join(d.reasons),
        "applied": d.applied,
        "health": health_of(d),
        "decisions": count,
    }


def _decision_row(d: Decision) -> dict[str, Any]:
    ns, name = split_policy(d.policy)
    return {
        "policy": d.policy,
        "at_us": to_us(d.at),
        "applied": d.applied,
        "mode": d.mode,
        "current": d.current,
        "desired": d.desired,
        "reasons": ",".join(d.reasons),
        "record": json.dumps(d.to_dict(), separators=(",", ":")),
        "namespace": ns,
        "name": name,
        "target": d.target,
        "min_replicas": d.min_replicas,
        "max_replicas": d.max_replicas,
    }


_INSERT_COLUMNS = [c.name for c in decisions_table.columns if c.name != "id"]


# ---------------------------------------------------------------- engine


def make_engine(url: str) -> Engine:
    """An engine with gemini's settings: SQLite in WAL with real transactions; pg pre-ping."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"store url {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        in_memory = not db or db == ":memory:"
        if not in_memory and db:
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if in_memory else None,
        )
        _sqlite_transactions(engine, wal=not in_memory)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_transactions(engine: Engine, *, wal: bool) -> None:
    """SQLAlchemy's documented recipe for real SQLite transactions, plus WAL and
    `BEGIN IMMEDIATE` for writers (so concurrent writers queue on busy_timeout, not deadlock)."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        if wal:
            _switch_to_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("gemini_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _switch_to_wal(cur: Any, attempts: int = 60) -> None:
    """`PRAGMA journal_mode=WAL`, retried while another connection holds the file: SQLite answers
    "database is locked" at once here, without its busy handler (several processes or threads
    opening a new store together). Once one switch is done the mode sticks to the file."""
    import sqlite3

    for attempt in range(attempts):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(min(0.25, 0.005 * 2**attempt))


def schema_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("gemini_schema"):
        return 0
    value = conn.execute(sa.select(schema_table.c.version)).scalar()
    return int(value or 0)


def migrate(engine: Engine, up_to: int = SCHEMA_VERSION) -> int:
    """Bring the schema to version `up_to` (default: current). Returns the version reached."""
    with _write(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
        version = schema_version(conn)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"decision store schema version {version} is newer than this gemini "
                f"(knows up to {SCHEMA_VERSION}); upgrade gemini"
            )
        if version == 0 and not sa.inspect(conn).has_table("gemini_schema"):
            schema_table.create(conn)
            conn.execute(schema_table.insert().values(version=0))
        for step in range(version, up_to):
            MIGRATIONS[step](conn)
            version = step + 1
        conn.execute(schema_table.update().values(version=version))
        return version


@contextmanager
def _read(engine: Engine, url: str) -> Iterator[Connection]:
    """A connection for a query; a database that cannot be reached raises `StoreError` (what the
    dashboard answers 503 for), not SQLAlchemy's exception."""
    try:
        with engine.connect() as conn:
            yield conn
    except (sa.exc.OperationalError, sa.exc.TimeoutError) as exc:  # down, or pool exhausted
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise StoreError(f"store {_safe(url)} unreachable: {reason}") from exc


@contextmanager
def _write(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as raw:
        conn = raw.execution_options(gemini_write=True)
        with conn.begin():
            yield conn


# ---------------------------------------------------------------- store


class SqlStore(RecordStore):
    """`DecisionStore` over one SQLAlchemy engine; safe to share between threads."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        try:
            self.version = migrate(self.engine)
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            reason = " ".join(str(exc.orig).split())  # driver messages span lines
            raise StoreError(f"store {_safe(url)}: cannot open: {reason}") from exc
        except BaseException:
            self.engine.dispose()
            raise

    def write_many(self, decisions: Sequence[Decision]) -> None:
        if not decisions:
            return
        rows = [_decision_row(d) for d in decisions]
        newest: dict[str, tuple[Decision, int]] = {}
        for d in decisions:
            old = newest.get(d.policy)
            if old is None:
                newest[d.policy] = (d, 1)
            else:
                keep = d if d.at >= old[0].at else old[0]
                newest[d.policy] = (keep, old[1] + 1)
        with _write(self.engine) as conn:
            self._insert(conn, rows)
            # sorted: concurrent writers lock summary rows in one order (no PostgreSQL deadlock)
            self._upsert(conn, [_summary_row(*newest[k]) for k in sorted(newest)])

    def _insert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """executemany straight to the driver: SQLAlchemy's per-row parameter processing
        costs as much as the insert itself for big batches."""
        cols = _INSERT_COLUMNS
        if conn.dialect.paramstyle == "qmark":
            marks = ", ".join("?" * len(cols))
            params: list[Any] = [tuple(r[c] for c in cols) for r in rows]
        else:  # psycopg: pyformat
            marks = ", ".join(f"%({c})s" for c in cols)
            params = rows
        sql = f"INSERT INTO decisions ({', '.join(cols)}) VALUES ({marks})"
        conn.exec_driver_sql(sql, params)

    def _upsert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt: Any = pg_insert(policies_table)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(policies_table)
        p = policies_table.c
        ex = stmt.excluded
        newer = ex.last_at_us >= p.last_at_us
        values: dict[str, Any] = {
            c.name: sa.case((newer, ex[c.name]), else_=c)
            for c in policies_table.columns
            if c.name not in {"policy", "decisions"}
        }
        values["decisions"] = p.decisions + ex.decisions
        conn.execute(stmt.on_conflict_do_update(index_elements=[p.policy], set_=values), rows)

    def policies(self) -> list[PolicySummary]:
        p = policies_table.c
        with _read(self.engine, self.url) as conn:
            rows = conn.execute(sa.select(policies_table).order_by(p.policy)).all()
        return [
            PolicySummary(
                policy=r.policy,
                target=r.target,
                mode=r.mode,
                current=r.current,
                desired=r.desired,
                min_replicas=r.min_replicas,
                max_replicas=r.max_replicas,
                last_at=from_us(r.last_at_us),
                last_reasons=tuple(x for x in r.last_reasons.split(",") if x),
                applied=bool(r.applied),
                health=r.health,
                decisions=int(r.decisions),
            )
            for r in rows
        ]

    def decision_records(
        self,
        policy: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[str]:
        d = decisions_table.c
        q = sa.select(d.record)
        if policy is not None:
            q = q.where(d.policy == policy)
        if since is not None:
            q = q.where(d.at_us >= to_us(since))
        if until is not None:
            q = q.where(d.at_us < to_us(until))
        q = q.order_by(d.at_us.desc(), d.id.desc()).limit(max(0, limit))
        with _read(self.engine, self.url) as conn:
            return list(conn.execute(q).scalars())

    def count(self, policy: str | None = None) -> int:
        d = decisions_table.c
        q = sa.select(sa.func.count()).select_from(decisions_table)
        if policy is not None:
            q = q.where(d.policy == policy)
        with _read(self.engine, self.url) as conn:
            return int(conn.execute(q).scalar_one())

    def prune(self, *, older_than: datetime | None = None, keep_last: int | None = None) -> int:
        d = decisions_table.c
        deleted = 0
        with _write(self.engine) as conn:
            if older_than is not None:
                res = conn.execute(decisions_table.delete().where(d.at_us < to_us(older_than)))
                deleted += res.rowcount or 0
            if keep_last is not None:
                for policy in conn.execute(sa.select(policies_table.c.policy)).scalars():
                    edge = conn.execute(
                        sa.select(d.at_us, d.id)
                        .where(d.policy == policy)
                        .order_by(d.at_us.desc(), d.id.desc())
                        .offset(max(0, keep_last))
                        .limit(1)
                    ).first()
                    if edge is None:
                        continue
                    at_us, row_id = edge
                    res = conn.execute(
                        decisions_table.delete().where(
                            d.policy == policy,
                            sa.or_(d.at_us < at_us, sa.and_(d.at_us == at_us, d.id <= row_id)),
                        )
                    )
                    deleted += res.rowcount or 0
            if deleted:
                counted = (
                    sa.select(sa.func.count())
                    .where(d.policy == policies_table.c.policy)
                    .scalar_subquery()
                )
                conn.execute(policies_table.update().values(decisions=counted))
        return deleted

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"store {_safe(self.url)} unreachable: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid url>"
