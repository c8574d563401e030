from __future__ import annotations

import pytest

from tests.benchmarks.factories import Cast, make_cast


@pytest.fixture
def cast(db) -> Cast:
    return make_cast()


@pytest.fixture
def client_for(client):
    """``client_for(user)``: the test client logged in as that user."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
async def close_thread_connections():
    """Async tests touch the database from asgiref's worker thread; close that connection after,
    or Postgres refuses to drop the test database at the end of the session."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture(scope="session")
def simulator():
    """One simulator for the session: 50 ms TTFT, 5 ms between tokens, 16-token answers."""
    from runner.simulator import SimulatorProcess

    with SimulatorProcess(ttft_ms=50, itl_ms=5, output_tokens=16) as sim:
        yield sim
