"""Accounts: sign-up only where allowed; the team switch never redirects off-site."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse


def test_sign_up_is_closed_when_not_allowed(client, db, settings) -> None:
    settings.ALLOW_SIGNUP = False
    page = client.get(reverse("signup"))
    assert page.status_code == 403 and "Sign-up is closed" in page.content.decode()
    posted = client.post(
        reverse("signup"),
        {
            "username": "mallory",
            "email": "m@example.com",
            "password1": "a long pass 123",
            "password2": "a long pass 123",
        },
    )
    assert posted.status_code == 403 and not get_user_model().objects.filter(username="mallory").exists()
    assert "Sign up" not in client.get(reverse("login")).content.decode()


def test_sign_up_works_where_allowed(client, db, settings) -> None:
    settings.ALLOW_SIGNUP = True
    assert client.get(reverse("signup")).status_code == 200
    assert "Sign up" in client.get(reverse("login")).content.decode()


@pytest.mark.parametrize(
    ("target", "lands"),
    [
        ("https://evil.example.com/phish", "/"),
        ("//evil.example.com/", "/"),
        ("/runs/", "/runs/"),
        ("", "/"),
    ],
)
def test_team_switch_never_redirects_off_site(cast, client_for, target: str, lands: str) -> None:
    response = client_for(cast.alice).post(reverse("team_switch"), {"team": cast.team_a.pk, "next": target})
    assert response.status_code == 302 and response["Location"] == lands


def test_repeated_wrong_passwords_lock_the_login_out(client, db, settings) -> None:
    from tests.benchmarks.factories import make_user

    make_user("dana")
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        wrong = client.post(reverse("login"), {"username": "dana", "password": "not it"})
        assert wrong.status_code in (200, 429)
    locked = client.post(reverse("login"), {"username": "dana", "password": "correct horse battery"})
    assert locked.status_code == 429  # even the right password, until the cool-off
    assert "_auth_user_id" not in client.session


def test_a_right_password_logs_in_and_resets_the_count(client, db) -> None:
    from tests.benchmarks.factories import make_user

    make_user("erin")
    client.post(reverse("login"), {"username": "erin", "password": "not it"})
    ok = client.post(reverse("login"), {"username": "erin", "password": "correct horse battery"})
    assert ok.status_code == 302 and "_auth_user_id" in client.session
