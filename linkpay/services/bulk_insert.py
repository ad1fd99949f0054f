"""Inserting thousands of rows and getting their ids back, fast on PostgreSQL.

On PostgreSQL the ids are taken from the table's sequence first and the rows streamed with
COPY. An INSERT ... RETURNING of 2,000 rows is one huge statement that PostgreSQL takes
~0.3 s to parse and plan, and 2,000 pipelined single-row INSERTs still cost it ~40 µs a
row; COPY is the bulk path it is built for. Elsewhere (SQLite, in-process) SQLAlchemy's
INSERT ... RETURNING is already fast."""

from __future__ import annotations

import enum

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from linkpay.models import Base

NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")


def reserve_ids(session: Session, model: type[Base], count: int) -> list[int] | None:
    """``count`` ids from the table's sequence, for rows that must know their ids before
    they are written; None where the database has no sequence to take them from (SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return list(session.scalars(NEXT_IDS, {"table": model.__tablename__, "n": count}))


def insert_rows(
    session: Session, model: type[Base], rows: list[dict], ids: list[int] | None = None
) -> list[int]:
    """Insert ``rows`` (dicts with the same keys) into ``model``'s table, inside the
    session's transaction, and return their ids in order. ``ids``, on PostgreSQL, are ids
    already taken with ``reserve_ids``; without them they are taken here, or, elsewhere,
    given by the database as it inserts."""
    if not rows:
        return []
    if session.get_bind().dialect.name != "postgresql":
        if ids is not None:
            raise ValueError("ids can only be reserved on PostgreSQL (see reserve_ids)")
        returning = insert(model).returning(model.id, sort_by_parameter_order=True)
        return list(session.scalars(returning, rows))
    ids = ids if ids is not None else reserve_ids(session, model, len(rows))
    keys = list(rows[0])
    defaults = _python_defaults(model, rows[0])
    filled = [_plain(value) for value in defaults.values()]
    columns = ", ".join(["id", *keys, *defaults])
    # The session's own connection, so the rows belong to its transaction.
    driver = session.connection().connection.driver_connection
    statement = f"COPY {model.__tablename__} ({columns}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row_id, row in zip(ids, rows, strict=True):
            copy.write_row([row_id, *(_plain(row[key]) for key in keys), *filled])
    return ids


def _python_defaults(model: type[Base], row: dict) -> dict:
    """The model's Python-side defaults (``default=...``) for the columns ``row`` leaves
    out: COPY does not go through SQLAlchemy, which would otherwise fill them in."""
    defaults = {}
    for column in model.__table__.columns:
        default = column.default
        if column.primary_key or column.key in row or default is None:
            continue
        if default.is_scalar:
            defaults[column.key] = default.arg
        elif default.is_callable:
            defaults[column.key] = default.arg(None)  # SQLAlchemy wraps it to take a context
    return defaults


def _plain(value):
    # COPY bypasses SQLAlchemy's column types: statuses and channels go as their values.
    return value.value if isinstance(value, enum.Enum) else value
