"""Fixtures for the store contract suite: one migrated store per dialect, a fake clock, a raw
connection to look behind the store's back, and builders of runs and tasks."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from typing import Any

import psycopg
import pytest

from ideamine.stores.postgres import PostgresStore
from ideamine.stores.sqlite import SqliteStore

START = 1_700_000_000.0

Store = SqliteStore | PostgresStore
Raw = Callable[..., list[tuple[Any, ...]]]


class FakeClock:
    """A clock that moves only when a test says so."""

    def __init__(self, start: float = START) -> None:
        self.value = start

    def now(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock, make_store: Callable[..., Store]) -> Iterator[Store]:
    """A migrated store of the parametrized dialect on the fake clock; closed after the test."""
    opened = make_store(store_url, clock)
    try:
        asyncio.run(opened.migrate())
        yield opened
    finally:
        asyncio.run(opened.close())


@pytest.fixture
def raw(store_url: str) -> Raw:
    """``raw(sql, params)``: run one statement on a connection of its own (``?`` placeholders,
    committed at once) and return its rows, for looking at rows no store method returns."""

    def query(statement: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        if store_url.startswith(("postgresql://", "postgres://")):
            with psycopg.connect(store_url, autocommit=True) as connection:
                cursor = connection.execute(statement.replace("?", "%s"), tuple(params))
                return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
        with closing(sqlite3.connect(store_url, isolation_level=None)) as connection:
            return [tuple(row) for row in connection.execute(statement, tuple(params))]

    return query
