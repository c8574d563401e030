"""An unreachable database is waited out; a statement that fails on its own is not an outage."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from benchmarks.services.runs import outage


@pytest.mark.django_db
def test_a_failing_statement_with_the_database_up_is_not_an_outage() -> None:
    assert not outage.transient(OperationalError("no such function: greatest"))


@pytest.mark.django_db
def test_a_locked_sqlite_database_is_waited_out() -> None:
    assert outage.transient(OperationalError("database is locked"))


@pytest.mark.django_db
def test_a_database_that_does_not_answer_is_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connection

    def down() -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", down)
    assert outage.transient(OperationalError("server closed the connection unexpectedly"))
