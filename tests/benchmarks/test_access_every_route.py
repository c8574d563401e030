"""Every route in the URL resolver, checked: a new view without a login or a team check fails here.

Routes are read from the resolver, not listed by hand. Each route's arguments are filled with team
A's objects, found by the route's first path segment (``OWNERS``); a route this file cannot fill
fails the suite until someone says whose object it names. Carol, in team B only, must get 404 from
every route naming one of team A's objects; an anonymous visitor must be sent to log in (or get
401 from the API) everywhere but the few public pages.
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, reverse

from benchmarks.services.api_tokens import api_token_create

PUBLIC = {"healthz", "login", "logout", "signup"}
# a route's first path segment → which of team A's objects its first argument names
OWNERS = {
    "teams": "team",
    "endpoints": "endpoint",
    "profiles": "profile",
    "plans": "plan",
    "datasets": "dataset",
    "runs": "run",
    "api/runs": "run",
    "api/v1/plans": "plan",
    "api/v1/runs": "run",
    "comparisons": "comparison",
    "alerts": "alert",
    "api-tokens": "api_token",
    "mirror": "run",  # a mirror session is a run of kind mirror
}


def routes() -> list[tuple[str, str, URLPattern]]:
    found = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif p.name and not prefix.startswith("admin/"):
                found.append((p.name, prefix + str(p.pattern).lstrip("^"), p))

    walk(get_resolver().url_patterns, "")
    return found


ARG = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>")


def args_of(pattern: URLPattern) -> list[str]:
    return [a or b for a, b in ARG.findall(str(pattern.pattern))]


def owner_of(route: str) -> str | None:
    for prefix in sorted(OWNERS, key=len, reverse=True):
        if route.startswith(prefix + "/"):
            return OWNERS[prefix]
    return None


def fill(name: str, route: str, pattern: URLPattern, objects: dict[str, Any], cast) -> str:
    values: dict[str, Any] = {}
    for arg in args_of(pattern):
        if arg == "pk":
            owner = owner_of(route)
            assert owner, f"route {name} ({route}): add whose object it names to OWNERS in {__name__}"
            values[arg] = objects[owner].pk
        elif arg == "record_pk":
            values[arg] = cast.run.records.get().pk
        elif arg == "member_pk":
            values[arg] = cast.team_a.memberships.get(user=cast.bob).pk
        elif arg == "number":
            values[arg] = 1
        elif arg == "fmt":
            values[arg] = "csv"
        elif arg == "name":  # a shipped dataset's name: not a team object
            values[arg] = "math500"
        else:
            raise AssertionError(f"route {name} ({route}): argument {arg!r} unknown to {__name__}")
    return reverse(name, kwargs=values)


def test_every_route_naming_a_team_object_is_404_for_another_team(cast, client_for, team_a_objects):
    carol = client_for(cast.carol)
    _, carol_token = api_token_create(team=cast.team_b, by=cast.carol, name="b")
    as_team_b = {"HTTP_AUTHORIZATION": f"Bearer {carol_token}"}
    checked = []
    for name, route, pattern in routes():
        if "pk" not in args_of(pattern):
            continue  # names no object of a team
        url = fill(name, route, pattern, team_a_objects, cast)
        extra = as_team_b if route.startswith("api/v1/") else {}
        for method in ("get", "post"):
            status = getattr(carol, method)(url, **extra).status_code
            assert status in (404, 405), f"{method.upper()} {url} ({name}) gave {status} to another team"
        checked.append(name)
    assert len(checked) >= 40  # the resolver really was walked


def test_every_route_but_the_public_ones_needs_a_login(cast, client, team_a_objects):
    for name, route, pattern in routes():
        if name in PUBLIC:
            continue
        url = fill(name, route, pattern, team_a_objects, cast)
        response = client.get(url)
        if route.startswith("api/v1/"):
            assert response.status_code in (401, 403), (
                f"GET {url} ({name}) without a token: {response.status_code}"
            )
        else:
            assert response.status_code == 302 and "/login/" in response["Location"], (
                f"GET {url} ({name}) without a login: {response.status_code}"
            )
