from django.contrib.auth import views as auth_views
from django.urls import include, path

from benchmarks.views import accounts, library, runs

KINDS = {"endpoints": "endpoint", "profiles": "profile", "plans": "plan"}  # datasets: urls_datasets.py


def _crud(segment: str, kind: str) -> list:
    extra = {"kind": kind}
    return [
        path(f"{segment}/", library.object_list, extra, name=f"{kind}_list"),
        path(f"{segment}/new/", library.object_create, extra, name=f"{kind}_create"),
        path(f"{segment}/<int:pk>/edit/", library.object_edit, extra, name=f"{kind}_edit"),
        path(f"{segment}/<int:pk>/clone/", library.object_clone, extra, name=f"{kind}_clone"),
        path(f"{segment}/<int:pk>/delete/", library.object_delete, extra, name=f"{kind}_delete"),
    ]


urlpatterns = [
    path("", library.home, name="home"),
    path("signup/", accounts.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("teams/", accounts.team_list, name="team_list"),
    path("teams/new/", accounts.team_create_view, name="team_create"),
    path("teams/switch/", accounts.team_switch, name="team_switch"),
    path("teams/<int:pk>/", accounts.team_detail, name="team_detail"),
    path("teams/<int:pk>/members/add/", accounts.team_member_add, name="team_member_add"),
    path(
        "teams/<int:pk>/members/<int:member_pk>/remove/",
        accounts.team_member_remove,
        name="team_member_remove",
    ),
    *[p for segment, kind in KINDS.items() for p in _crud(segment, kind)],
    path("endpoints/<int:pk>/", library.endpoint_detail, name="endpoint_detail"),
    path("endpoints/<int:pk>/test/", library.endpoint_test, name="endpoint_test"),
    path("profiles/<int:pk>/", library.profile_detail, name="profile_detail"),
    path("plans/<int:pk>/", library.plan_detail, name="plan_detail"),
    path("plans/<int:pk>/start/", library.plan_start, name="plan_start"),
    path("runs/", runs.run_list, name="run_list"),
    path("runs/<int:pk>/", runs.run_detail, name="run_detail"),
    path("runs/<int:pk>/cancel/", runs.run_cancel_view, name="run_cancel"),
    path("runs/<int:pk>/requests/<int:record_pk>/", runs.run_request, name="run_request"),
    path("runs/<int:pk>/requests.csv", runs.run_requests_csv, name="run_requests_csv"),
    path("runs/<int:pk>/summary.json", runs.run_summary_json, name="run_summary_json"),
    path("api/runs/<int:pk>/", runs.run_api, name="run_api"),
    path("", include("benchmarks.urls_compare")),
    path("datasets/", include("benchmarks.urls_datasets")),
]
