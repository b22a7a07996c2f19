"""SQL kept as ``.sql`` files beside the code that runs it (``tasks/<dag_id>/sql/``), loaded one way.

A query file ships with the package and takes no input (values go in as bind parameters), so its
text is as literal as a string written in code; psycopg types queries as ``LiteralString``, which
is what :func:`load_query` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import LiteralString


@cache
def load_query(directory: Path, name: str) -> LiteralString:
    """The text of ``directory/name``, read once per process.

    :raises FileNotFoundError: naming the file, when the package ships no such query.
    """
    path = directory / name
    try:
        text: LiteralString = path.read_text(encoding="utf-8")  # type: ignore[assignment]  # see module doc
    except FileNotFoundError:
        raise FileNotFoundError(
            f"query file {path} not found (the package ships its SQL beside its code)"
        ) from None
    return text


def query_loader(directory: Path) -> Callable[[str], LiteralString]:
    """``_sql = query_loader(SQL_DIR)``, then ``conn.execute(_sql("connections.sql"))``."""

    def _sql(name: str) -> LiteralString:
        return load_query(directory, name)

    return _sql
