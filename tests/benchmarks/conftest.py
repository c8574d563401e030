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


@pytest.fixture
def team_a_objects(cast):
    """One of each of team A's objects a URL can name (the cast's, plus a comparison, an alert and
    an API token)."""
    from benchmarks.models import PlanSchedule, RunCheck
    from benchmarks.services.api_tokens import api_token_create
    from benchmarks.services.comparisons import comparison_create

    comparison = comparison_create(
        team=cast.team_a, by=cast.alice, title="c", notes="", run_ids=[cast.run.pk]
    )
    schedule = PlanSchedule.objects.create(team=cast.team_a, plan=cast.plan, created_by=cast.alice)
    alert = RunCheck.objects.create(team=cast.team_a, schedule=schedule, run=cast.run, status="regressed")
    token, _ = api_token_create(team=cast.team_a, by=cast.alice, name="ci")
    return {**cast.objects, "team": cast.team_a, "comparison": comparison, "alert": alert, "api_token": token}
