"""Isolation between teams and the viewer role, over every object URL, download and websocket."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from benchmarks.models import Endpoint, Plan, Run
from llmperf_site.asgi import application
from tests.benchmarks.factories import make_cast

KINDS = ("endpoint", "dataset", "profile", "plan")
# (url name, object kind, method)
OBJECT_URLS = [
    *[(f"{k}_detail", k, "get") for k in KINDS],
    *[(f"{k}_edit", k, "get") for k in KINDS],
    *[(f"{k}_edit", k, "post") for k in KINDS],
    *[(f"{k}_clone", k, "post") for k in KINDS],
    *[(f"{k}_delete", k, "get") for k in KINDS],
    *[(f"{k}_delete", k, "post") for k in KINDS],
    ("endpoint_test", "endpoint", "post"),
    ("plan_start", "plan", "post"),
    ("run_detail", "run", "get"),
    ("run_cancel", "run", "post"),
    ("run_requests_csv", "run", "get"),
    ("run_summary_json", "run", "get"),
    ("run_api", "run", "get"),
    ("run_request_detail", "record", "get"),
]
WRITES = [(name, kind, method) for name, kind, method in OBJECT_URLS if method == "post"]


def url_for(cast, name: str, kind: str) -> str:
    if kind == "record":
        return reverse(name, args=[cast.run.pk, cast.run.records.get().pk])
    return reverse(name, args=[cast.objects[kind].pk])


@pytest.mark.parametrize(("name", "kind", "method"), OBJECT_URLS)
def test_foreign_team_gets_404(cast, client_for, name, kind, method):
    client = client_for(cast.carol)
    response = getattr(client, method)(url_for(cast, name, kind))
    assert response.status_code == 404


@pytest.mark.parametrize(("name", "kind", "method"), OBJECT_URLS)
def test_member_reaches_every_url(cast, client_for, name, kind, method, monkeypatch):
    monkeypatch.setattr(
        "benchmarks.views.library.endpoint_test_connection", lambda **kw: {"ok": False, "packets": []}
    )
    monkeypatch.setattr("benchmarks.services.runs.start.enqueue_on_commit", lambda *a, **kw: None)
    response = getattr(client_for(cast.bob), method)(url_for(cast, name, kind))
    assert response.status_code in (200, 302, 400)


@pytest.mark.parametrize(("name", "kind", "method"), WRITES)
def test_viewer_cannot_change_anything(cast, client_for, name, kind, method):
    response = client_for(cast.vera).post(url_for(cast, name, kind))
    assert response.status_code == 403


@pytest.mark.parametrize("kind", KINDS)
def test_viewer_cannot_create(cast, client_for, kind):
    client = client_for(cast.vera)
    assert client.get(reverse(f"{kind}_create")).status_code == 403
    assert client.post(reverse(f"{kind}_create"), {"name": "x"}).status_code == 403


def test_viewer_reads_but_sees_no_write_buttons(cast, client_for):
    client = client_for(cast.vera)
    page = client.get(reverse("plan_detail", args=[cast.plan.pk])).content.decode()
    assert cast.plan.name in page
    assert "Start run" not in page and "Edit" not in page
    assert "New plan" not in client.get(reverse("plan_list")).content.decode()


@pytest.mark.parametrize("kind", [*KINDS, "run"])
def test_lists_show_only_current_team(cast, client, kind):
    link = f"/{kind}s/{cast.objects[kind].pk}/"
    client.force_login(cast.alice)
    alice_page = client.get(reverse(f"{kind}_list"))
    assert alice_page.status_code == 200 and link in alice_page.content.decode()
    client.force_login(cast.carol)
    carol_page = client.get(reverse(f"{kind}_list"))
    assert carol_page.status_code == 200 and link not in carol_page.content.decode()


def test_plan_form_rejects_another_teams_endpoint(cast, client_for):
    foreign = Endpoint.objects.filter(team=cast.team_b).first()
    data = {
        "name": "sneaky",
        "endpoint": foreign.pk,
        "dataset": cast.plan.dataset_id,
        "profile": cast.plan.profile_id,
        "max_tokens": 16,
        "duration_s": 5,
        "bucket_edges": "0, 1024",
        "sample_order": "sequential",
        "shard_count": 0,
    }
    response = client_for(cast.alice).post(reverse("plan_create"), data)
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Plan.objects.filter(name="sneaky").exists()


def test_foreign_team_page_404_and_team_switch_refused(cast, client_for):
    client = client_for(cast.carol)
    assert client.get(reverse("team_detail", args=[cast.team_a.pk])).status_code == 404
    assert client.post(reverse("team_switch"), {"team": cast.team_a.pk}).status_code == 404


def test_members_added_by_username_or_email(cast, client_for):
    client = client_for(cast.alice)
    response = client.post(
        reverse("team_member_add", args=[cast.team_a.pk]),
        {"identifier": "carol@example.com", "role": "viewer"},
    )
    assert response.status_code == 302
    assert cast.team_a.memberships.get(user=cast.carol).role == "viewer"
    response = client.post(
        reverse("team_member_add", args=[cast.team_a.pk]), {"identifier": "nobody", "role": "member"}
    )
    assert response.status_code == 400
    assert "No user with username or email" in response.content.decode()


def test_only_owner_adds_members(cast, client_for):
    response = client_for(cast.bob).post(
        reverse("team_member_add", args=[cast.team_a.pk]), {"identifier": "carol", "role": "owner"}
    )
    assert response.status_code == 403


async def _ws_connect(client, run_id: int) -> tuple[bool, WebsocketCommunicator]:
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        f"/ws/runs/{run_id}/",
        headers=[(b"cookie", cookie), (b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")],
    )
    connected, _ = await communicator.connect()
    return connected, communicator


@pytest.mark.django_db(transaction=True)
async def test_websocket_refuses_foreign_team_and_serves_members(client, close_thread_connections):
    from asgiref.sync import sync_to_async

    cast = await sync_to_async(make_cast)()
    await sync_to_async(client.force_login)(cast.carol)
    connected, communicator = await _ws_connect(client, cast.run.pk)
    assert not connected
    await communicator.disconnect()

    await sync_to_async(client.force_login)(cast.vera)
    connected, communicator = await _ws_connect(client, cast.run.pk)
    assert connected
    history = await communicator.receive_json_from(timeout=5)
    assert history["type"] == "history"
    assert history["rows"][0]["ttft_p50"] == 50.0
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_an_open_websocket_is_cut_off_when_its_user_leaves_the_team(
    client, close_thread_connections, monkeypatch
):
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from benchmarks.live import consumers
    from benchmarks.models import Membership

    monkeypatch.setattr(consumers, "RECHECK_EVERY_S", 0.0)
    cast = await sync_to_async(make_cast)()
    await sync_to_async(client.force_login)(cast.bob)
    connected, communicator = await _ws_connect(client, cast.run.pk)
    assert connected and (await communicator.receive_json_from(timeout=5))["type"] == "history"
    layer = get_channel_layer()
    await layer.group_send(cast.run.ws_group, {"type": "run.update", "rows": []})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "tick"  # still a member
    await sync_to_async(Membership.objects.filter(team=cast.team_a, user=cast.bob).delete)()
    await layer.group_send(cast.run.ws_group, {"type": "run.update", "rows": [{"t": 1}]})
    closed = await communicator.receive_output(timeout=5)
    assert closed["type"] == "websocket.close" and closed.get("code") == 4403
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_websocket_refuses_anonymous(close_thread_connections):
    from asgiref.sync import sync_to_async

    cast = await sync_to_async(make_cast)()
    communicator = WebsocketCommunicator(
        application,
        f"/ws/runs/{cast.run.pk}/",
        headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")],
    )
    connected, _ = await communicator.connect()
    assert not connected
    assert await Run.objects.filter(pk=cast.run.pk).aexists()
