"""Junk in a URL or a form is a clear answer, never a server error."""

from __future__ import annotations

from django.urls import reverse

from tests.benchmarks.test_access_every_route import fill, routes

JUNK = {
    "plan": "abc",
    "endpoint": "-1",
    "page": "zz",
    "since": "2026-13-45",
    "until": "yesterday",
    "tag": "=",
    "status": "<script>",
    "audit_threshold": "nan",
    "runs": "1,x,,2",
    "per_page": "1e9",
}


def test_no_page_answers_junk_parameters_with_a_server_error(cast, client_for, team_a_objects, settings):
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    client = client_for(cast.alice)
    client.raise_request_exception = False
    for name, route, pattern in routes():
        if name in ("logout",):
            continue
        url = fill(name, route, pattern, team_a_objects, cast)
        response = client.get(url, JUNK)
        assert response.status_code < 500, f"GET {url} with junk parameters: {response.status_code}"


def test_a_junk_team_id_on_switch_is_404_not_500(cast, client_for):
    client = client_for(cast.alice)
    client.raise_request_exception = False
    for junk in ("abc", "", "1.5", "-3", "99999999999999999999999"):
        response = client.post(reverse("team_switch"), {"team": junk})
        assert response.status_code == 404, junk
