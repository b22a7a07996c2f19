"""Create and seed the demo Sanvi Machinery application database (``devstack/sql/app/*.sql``).

``make run`` calls :func:`seed_app_db` on every start: the schema file is idempotent and the
seed file fills only an empty database, so a restart keeps whatever the DAGs did to the data
(vacuumed tables, restored rows) instead of resetting it. Concurrent callers serialise on an
advisory lock, so two starts can never seed twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

#: Where the application's SQL lives; applied in file-name order.
APP_SQL_DIR = Path(__file__).resolve().parent / "sql" / "app"

#: Arbitrary, fixed key of the advisory lock that serialises seeding.
_SEED_LOCK_KEY = 0x5A4E5649  # "SANVI"


def app_sql_files() -> list[Path]:
    """The application's SQL files in the order they are applied."""
    files = sorted(APP_SQL_DIR.glob("[0-9][0-9][0-9]_*.sql"))
    if not files:
        raise FileNotFoundError(f"no application SQL files (NNN_*.sql) in {APP_SQL_DIR}")
    return files


def seed_app_db(dsn: str) -> dict[str, int]:
    """Apply the schema and seed (idempotent); return the row count of every table.

    :param dsn: libpq connection string of the application database (must already exist).
    :returns: ``{table_name: rows}`` for every ordinary table in the ``public`` schema.
    """
    with psycopg.connect(dsn) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SEED_LOCK_KEY,))
            for path in app_sql_files():
                conn.execute(path.read_text(encoding="utf-8").encode())
        return table_row_counts(conn)


def table_row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Exact ``count(*)`` of every ordinary table in ``public``, by name."""
    names = [
        str(row[0])
        for row in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname"
        ).fetchall()
    ]
    counts: dict[str, int] = {}
    for name in names:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", name))
        row = conn.execute(query).fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts
