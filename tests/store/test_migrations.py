"""Schema versioning: a store created by the previous version is upgraded in place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gemini.store import StoreError, open_store
from gemini.store.sql import SCHEMA_VERSION, make_engine, migrate, schema_version, to_us
from tests.store.factory import decision


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


def _write_v1(url: str) -> None:
    """Create a version-1 store and fill it the way version 1 did (no summary table)."""
    engine = make_engine(url)
    assert migrate(engine, up_to=1) == 1
    rows = [
        decision("shop/web", 10, desired=5),
        decision("shop/web", 20, desired=8, reasons=("ScaleUp", "ScaleUpLimit")),
        decision("sim/nasa-web", 5, mode="Shadow", applied=False),
    ]
    with engine.begin() as conn:
        assert not sa.inspect(conn).has_table("policies")
        for d in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO decisions (policy, at_us, applied, mode, current, desired,"
                    " reasons, record) VALUES (:p, :a, :ap, :m, :c, :d, :r, :rec)"
                ),
                {
                    "p": d.policy,
                    "a": to_us(d.at),
                    "ap": d.applied,
                    "m": d.mode,
                    "c": d.current,
                    "d": d.desired,
                    "r": ",".join(d.reasons),
                    "rec": json.dumps(d.to_dict()),
                },
            )
    engine.dispose()


def test_upgrade_from_previous_version_keeps_data_and_backfills(sql_url: str) -> None:
    _write_v1(sql_url)
    store = open_store(sql_url)
    try:
        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            assert schema_version(conn) == SCHEMA_VERSION
            cols = {c["name"] for c in sa.inspect(conn).get_columns("decisions")}
            assert {"namespace", "name", "target", "min_replicas", "max_replicas"} <= cols
            target = conn.execute(sa.text("SELECT DISTINCT target FROM decisions")).scalars()
            assert set(target) == {"apps/v1/Deployment/web"}
        by = {s.policy: s for s in store.policies()}
        assert by["shop/web"].desired == 8
        assert by["shop/web"].decisions == 2
        assert by["shop/web"].last_reasons == ("ScaleUp", "ScaleUpLimit")
        assert by["sim/nasa-web"].mode == "Shadow"
        assert [d.desired for d in store.decisions("shop/web")] == [8, 5]
        store.write_many([decision("shop/web", 30, desired=9)])
        assert {s.policy: s.desired for s in store.policies()}["shop/web"] == 9
    finally:
        store.close()


def test_reopening_a_current_store_is_a_no_op(sql_url: str) -> None:
    s1 = open_store(sql_url)
    s1.write_many([decision()])
    s1.close()
    s2 = open_store(sql_url)
    assert s2.count() == 1
    s2.close()


def test_a_newer_schema_is_refused_with_a_clear_error(sql_url: str) -> None:
    open_store(sql_url).close()
    engine = make_engine(sql_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE gemini_schema SET version = 99"))
    engine.dispose()
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        open_store(sql_url)


def open_together(url: str, n: int) -> list[BaseException]:
    """`n` threads open the store at `url` at once; the errors they got (stores are closed)."""
    import threading

    errors: list[BaseException] = []
    stores: list[Any] = []

    def op() -> None:
        try:
            stores.append(open_store(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=op) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for st in stores:
        st.close()
    return errors


def test_parallel_opens_migrate_once(sql_url: str) -> None:
    assert not open_together(sql_url, 4)


def test_reads_from_a_vanished_sqlite_store_raise_store_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The dashboard answers 503 for StoreError; SQLAlchemy's own exception became a 500."""
    import shutil

    folder = tmp_path / "gone"
    store = open_store(f"sqlite:///{folder / 'x.sqlite'}")
    store.write_many([decision("shop/web", 10)])
    store.engine.dispose()  # type: ignore[attr-defined]
    shutil.rmtree(folder)  # SQLite cannot open a file in a missing folder
    for read in (store.policies, store.decision_records, store.decisions, store.count):
        with pytest.raises(StoreError, match="unreachable: unable to open database file"):
            read()
    store.close()


def test_many_threads_opening_a_new_sqlite_store_together_all_succeed(tmp_path: Path) -> None:
    """SQLite answers the switch to WAL with "database is locked" at once (no busy handler)
    while another connection holds the new file: every opener must still get the store."""
    for round_ in range(10):
        errors = open_together(f"sqlite:///{tmp_path}/new-{round_}.sqlite", 6)
        assert not errors, f"round {round_}: {errors}"
