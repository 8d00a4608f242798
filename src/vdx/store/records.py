"""Rows read as plain columns, for the hottest reads (GET a meeting, GET a scheduling info).

Loading ORM entities costs SQLAlchemy's identity map and a row processor per entity and joined
relationship; the same columns through Core cost a fraction of that. These helpers select a
table's columns under a prefix and hand them back as a :class:`Record`, an object with the
entity's attribute names, so one set of response builders serves both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Label, Table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class Record:
    """One entity's columns (and the related records a reader attaches), by attribute name."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)

    if TYPE_CHECKING:  # any attribute, as an entity's (the type checker cannot know which)

        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...


def columns(table: Table, prefix: str) -> list[Label[Any]]:
    """Every column of ``table``, labelled ``prefix`` + its name (tables joined side by side)."""
    return [c.label(prefix + c.key) for c in table.c]


def record(row: Mapping[Any, Any], table: Table, prefix: str) -> Record | None:
    """The columns of ``table`` selected with :func:`columns`; ``None`` where an outer join found
    no row (its primary key is null)."""
    values = {c.key: row[prefix + c.key] for c in table.c}
    return None if values["id"] is None else Record(values)


class json_rows(FunctionElement[Any]):
    """Aggregate: the group's rows as a JSON array of arrays of the given columns, ``NULL`` or
    ``[]`` for none (see :func:`json_rows_list`). SQLAlchemy has no portable JSON aggregate; this
    is PostgreSQL's ``json_agg(json_build_array(...))`` and SQLite's
    ``json_group_array(json_array(...))``."""

    type = JSON()
    inherit_cache = True
    name = "json_rows"


@compiles(json_rows, "postgresql")
def _json_rows_pg(element: json_rows, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_agg(json_build_array({compiler.process(element.clauses, **kw)}))"


@compiles(json_rows, "sqlite")
def _json_rows_sqlite(element: json_rows, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_array(json_array({compiler.process(element.clauses, **kw)}))"


def json_rows_list(value: list[list[Any]] | None) -> list[list[Any]]:
    """The rows of a :class:`json_rows` aggregate (decoded by its JSON type), sorted: put the id
    first to keep insert order."""
    return sorted(value) if value else []
