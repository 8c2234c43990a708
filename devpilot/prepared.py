"""Queries on every request's path, compiled to SQL once per process instead of once per request.

Building a queryset's SQL costs the ORM about a millisecond when it has a join or a subquery (1.4 ms for the
API token lookup on the bench host), more than PostgreSQL takes to answer it, and every API call and page
paid that again for the same few queries: the token, the member's workspaces, the environments and the
folder. A PreparedQuery builds its queryset once with stand-in arguments and keeps the SQL; each call runs
that SQL with its own arguments through Django's own iterable (model instances, select_related, annotations
and converters exactly as the queryset gives them):

    TOKEN_BY_HASH = PreparedQuery(
        lambda token_hash: ApiToken.objects.select_related("workspace").filter(token_hash=token_hash)[:1],
        token_hash=str)
    tokens = TOKEN_BY_HASH(token_hash=hash_token(raw))   # a list, evaluated at once

Rules, checked when the SQL is first built or on each call (a broken rule fails at once, in tests):
  - each argument reaches the SQL unchanged: compared with `=`, `<`, `>` or a regex, not through `icontains` or
    `startswith`, whose lookups rewrite it into a pattern. Every declared argument must appear in the SQL's
    parameters;
  - argument types are str, int or UUID, and never None: the ORM writes `= None` as `IS NULL`, another SQL;
  - the result is a list, never a queryset: a queryset derived from it would run the stale SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.models import Model, QuerySet
from django.db.models.sql import Query
from django.db.models.sql.compiler import SQLCompiler

T = TypeVar("T")
_STAND_IN_NAMESPACE = uuid.UUID("5f0c6a4e-2d1b-4c1e-9a57-3f1a8e0f2b61")


def _stand_in(name: str, kind: type, index: int) -> Any:
    """An argument no real call passes, to find where `name` lands among the compiled SQL's parameters."""
    if kind is str:
        return f"\x1fprepared argument {name}\x1f"
    if kind is int:
        return -(2**52) - index
    if kind is uuid.UUID:
        return uuid.uuid5(_STAND_IN_NAMESPACE, name)
    raise ImproperlyConfigured(f"A prepared query's argument {name} is a {kind.__name__}: use str, int or UUID.")


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# How an argument is written into the parameters, as its stand-in came out of the compiler: PostgreSQL takes a
# UUID as it is, SQLite as 32 hex digits.
def _as_given(value: Any) -> Any:
    return value


def _uuid_as_hex(value: Any) -> str:
    return _as_uuid(value).hex


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: tuple[tuple[int, str, Callable[[Any], Any]], ...]  # (index in params, argument, writer)
    # What SQLCompiler.as_sql() leaves on the compiler for the iterables that read its rows.
    select: list
    klass_info: dict | None
    annotation_col_map: dict | None
    col_count: int
    has_extra_select: bool

    def params_for(self, arguments: dict[str, Any]) -> list:
        params = list(self.params)
        for index, name, write in self.slots:
            params[index] = write(arguments[name])
        return params


class _PreparedSQL(Query):
    """A Query answered by SQL compiled once (see PreparedQuery); `prepared` and `arguments` are set per call."""

    prepared: _Compiled
    arguments: list

    def get_compiler(self, using=None, connection=None, elide_empty=True):  # type: ignore[no-untyped-def]
        if connection is None:
            connection = connections[using]
        return _compiler_class(connection.ops.compiler("SQLCompiler"))(self, connection, using, elide_empty)


_COMPILER_CLASSES: dict[type, type] = {}


def _compiler_class(base: type[SQLCompiler]) -> type[SQLCompiler]:
    if base not in _COMPILER_CLASSES:
        def as_sql(self, with_limits=True, with_col_aliases=False):  # type: ignore[no-untyped-def]
            done: _Compiled = self.query.prepared
            self.select, self.klass_info, self.annotation_col_map = done.select, done.klass_info, \
                done.annotation_col_map
            self.col_count, self.has_extra_select = done.col_count, done.has_extra_select
            return done.sql, self.query.arguments

        _COMPILER_CLASSES[base] = type(f"Prepared{base.__name__}", (base,), {"as_sql": as_sql})
    return _COMPILER_CLASSES[base]


class PreparedQuery(Generic[T]):
    """`build(**arguments)` -> a queryset; calling the PreparedQuery gives that queryset's rows as a list."""

    def __init__(self, build: Callable[..., QuerySet[Any, T]], **arguments: type) -> None:
        self._build = build
        self._arguments = arguments
        self._model: type[Model] | None = None  # known once built
        self._ready: dict[tuple[str, str], tuple[QuerySet[Any, T], _Compiled]] = {}  # by (alias, vendor)

    def __call__(self, **arguments: Any) -> list[T]:
        if arguments.keys() != self._arguments.keys():
            raise TypeError(f"Expected the arguments {sorted(self._arguments)}, got {sorted(arguments)}.")
        if None in arguments.values():  # named, not shown: an argument may be a token's hash
            missing = sorted(name for name, value in arguments.items() if value is None)
            raise TypeError(f"A prepared query's arguments cannot be None ({', '.join(missing)} is).")
        template, compiled = self._prepared()
        queryset = template._chain()  # Django's copy: the same iterable (models or rows), fields and fetch mode
        queryset.query.arguments = compiled.params_for(arguments)
        return list(queryset)

    def _prepared(self) -> tuple[QuerySet[Any, T], _Compiled]:
        alias = router.db_for_read(self._model) if self._model is not None else DEFAULT_DB_ALIAS
        key = (alias, connections[alias].vendor)
        if key not in self._ready:  # two threads may both build it: the same result, no harm
            self._ready[key] = self._compile()
        return self._ready[key]

    def _compile(self) -> tuple[QuerySet[Any, T], _Compiled]:
        stand_ins = {name: _stand_in(name, kind, i) for i, (name, kind) in enumerate(self._arguments.items())}
        template = self._build(**stand_ins)
        self._model = template.model
        compiler = template.query.get_compiler(using=template.db)
        sql, params = compiler.as_sql()
        slots = [(index, name, write) for name, stand_in in stand_ins.items()
                 for index, write in _places(name, stand_in, params)]
        compiled = _Compiled(sql, tuple(params), tuple(slots), compiler.select, compiler.klass_info,
                             compiler.annotation_col_map, compiler.col_count, compiler.has_extra_select)
        prepared = template._chain()
        prepared._query = prepared.query.chain(_PreparedSQL)  # the setter would turn values_list rows into dicts
        prepared.query.prepared = compiled
        return prepared, compiled


def _places(name: str, stand_in: Any, params: Any) -> list[tuple[int, Callable[[Any], Any]]]:
    """Where the argument `name` (compiled as `stand_in`) is among the parameters, and how to write it there."""
    found: list[tuple[int, Callable[[Any], Any]]] = []
    for index, param in enumerate(params):
        if isinstance(stand_in, uuid.UUID) and param == stand_in.hex:
            found.append((index, _uuid_as_hex))
        elif type(param) is type(stand_in) and param == stand_in:
            found.append((index, _as_uuid if isinstance(stand_in, uuid.UUID) else _as_given))
    if not found:
        raise ImproperlyConfigured(
            f"The prepared query's argument {name} does not reach its SQL unchanged (a lookup such as icontains "
            "rewrites it): prepare only queries whose arguments are compared as given.")
    return found
