"""Every route of the dashboard and its API, by area. Views live in ``views/<area>.py``, the REST API
in ``api/views.py``, the run page's websocket in ``live/routing.py``."""

from django.contrib.auth import views as auth_views
from django.urls import URLPattern, include, path, re_path

from benchmarks.api import views as api
from benchmarks.views import accounts, api_tokens, automation, compare, datasets, library, mirror, runs

KINDS = {"endpoints": "endpoint", "profiles": "profile", "plans": "plan"}  # datasets: below
FMT = r"(?P<fmt>csv|html)"
V = "<int:pk>/v<int:number>"  # a dataset version


def _crud(segment: str, kind: str) -> list[URLPattern]:
    extra = {"kind": kind}
    return [
        path(f"{segment}/", library.object_list, extra, name=f"{kind}_list"),
        path(f"{segment}/new/", library.object_create, extra, name=f"{kind}_create"),
        path(f"{segment}/<int:pk>/edit/", library.object_edit, extra, name=f"{kind}_edit"),
        path(f"{segment}/<int:pk>/clone/", library.object_clone, extra, name=f"{kind}_clone"),
        path(f"{segment}/<int:pk>/delete/", library.object_delete, extra, name=f"{kind}_delete"),
    ]


accounts_urls = [
    path("signup/", accounts.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("teams/", accounts.team_list, name="team_list"),
    path("teams/new/", accounts.team_create_view, name="team_create"),
    path("teams/switch/", accounts.team_switch, name="team_switch"),
    path("teams/<int:pk>/", accounts.team_detail, name="team_detail"),
    path("teams/<int:pk>/members/add/", accounts.team_member_add, name="team_member_add"),
    path("teams/<int:pk>/retention/", accounts.team_retention, name="team_retention"),
    path(
        "teams/<int:pk>/members/<int:member_pk>/remove/",
        accounts.team_member_remove,
        name="team_member_remove",
    ),
]

library_urls = [
    *[p for segment, kind in KINDS.items() for p in _crud(segment, kind)],
    path("endpoints/stream-check/", library.endpoint_stream_check, name="endpoint_stream_check"),
    path("endpoints/<int:pk>/", library.endpoint_detail, name="endpoint_detail"),
    path("endpoints/<int:pk>/test/", library.endpoint_test, name="endpoint_test"),
    path("profiles/<int:pk>/", library.profile_detail, name="profile_detail"),
    path("plans/preview/", library.plan_preview, name="plan_preview"),
    path("plans/<int:pk>/", library.plan_detail, name="plan_detail"),
    path("plans/<int:pk>/start/", library.plan_start, name="plan_start"),
]

dataset_urls = [
    path("datasets/", datasets.dataset_list, name="dataset_list"),
    path("datasets/new/", datasets.dataset_upload, name="dataset_create"),
    path("datasets/synthetic/", datasets.dataset_generate, name="dataset_synthetic"),
    path("datasets/buckets/", datasets.team_buckets_edit, name="dataset_buckets"),
    path("datasets/builtin/<slug:name>/", datasets.dataset_builtin_add, name="dataset_builtin_add"),
    path("datasets/<int:pk>/", datasets.dataset_detail, name="dataset_detail"),
    path("datasets/<int:pk>/edit/", datasets.dataset_edit, name="dataset_edit"),
    path("datasets/<int:pk>/clone/", datasets.dataset_clone_view, name="dataset_clone"),
    path("datasets/<int:pk>/delete/", datasets.dataset_delete, name="dataset_delete"),
    path(f"datasets/{V}/", datasets.version_detail, name="dataset_version"),
    path(f"datasets/{V}/progress.json", datasets.version_progress, name="dataset_progress"),
    path(f"datasets/{V}/items.jsonl", datasets.version_download, name="dataset_download"),
    path(f"datasets/{V}/count/", datasets.version_count, name="dataset_count"),
]

run_urls = [
    path("runs/", runs.run_list, name="run_list"),
    path("runs/<int:pk>/", runs.run_detail, name="run_detail"),
    path("runs/<int:pk>/cancel/", runs.run_cancel_view, name="run_cancel"),
    path("runs/<int:pk>/requests/", runs.run_requests, name="run_requests"),
    path("runs/<int:pk>/requests/<int:record_pk>/", runs.run_request_detail, name="run_request_detail"),
    path("runs/<int:pk>/requests.csv", runs.run_requests_csv, name="run_requests_csv"),
    path("runs/<int:pk>/records.jsonl", runs.run_export_jsonl, name="run_export_jsonl"),
    path("runs/<int:pk>/notes/", runs.run_notes, name="run_notes"),
    path("runs/<int:pk>/delete/", runs.run_delete_view, name="run_delete"),
    path("runs/<int:pk>/again/", runs.run_again, name="run_again"),
    path("runs/<int:pk>/summary.json", runs.run_summary_json, name="run_summary_json"),
    re_path(rf"^runs/(?P<pk>\d+)/report\.{FMT}$", compare.run_export, name="run_export"),
    path("api/runs/<int:pk>/", runs.run_api, name="run_api"),
]

compare_urls = [
    path("compare/", compare.compare, name="compare"),
    re_path(rf"^compare/export\.{FMT}$", compare.compare_export, name="compare_export"),
    path("comparisons/", compare.comparison_list, name="comparison_list"),
    path("comparisons/new/", compare.comparison_save, name="comparison_save"),
    path("comparisons/<int:pk>/", compare.comparison_detail, name="comparison_detail"),
    path("comparisons/<int:pk>/edit/", compare.comparison_edit, name="comparison_edit"),
    path("comparisons/<int:pk>/delete/", compare.comparison_delete_view, name="comparison_delete"),
    re_path(rf"^comparisons/(?P<pk>\d+)/export\.{FMT}$", compare.comparison_export, name="comparison_export"),
]

automation_urls = [
    path("plans/<int:pk>/ab/", automation.plan_ab, name="plan_ab"),
    path("plans/<int:pk>/schedule/", automation.plan_schedule, name="plan_schedule"),
    path("alerts/", automation.alert_list, name="alert_list"),
    path("alerts/<int:pk>/dismiss/", automation.alert_dismiss, name="alert_dismiss"),
    path("api-tokens/", api_tokens.api_token_list, name="api_token_list"),
    path("api-tokens/new/", api_tokens.api_token_new, name="api_token_new"),
    path("api-tokens/<int:pk>/revoke/", api_tokens.api_token_revoke_view, name="api_token_revoke"),
]

mirror_urls = [  # bypass testing: a session's page is its run page
    path("mirror/new/", mirror.mirror_new, name="mirror_new"),
    path("mirror/<int:pk>/stop/", mirror.mirror_stop_view, name="mirror_stop"),
    path("datasets/capture/", mirror.capture_upload, name="capture_upload"),
]

api_urls = [  # /api/v1/: team tokens, JSON only
    path("plans/", api.plan_list, name="api_plan_list"),
    path("plans/<int:pk>/runs/", api.run_start_view, name="api_run_start"),
    path("runs/", api.run_list, name="api_run_list"),
    path("runs/<int:pk>/", api.run_detail, name="api_run"),
    path("runs/<int:pk>/summary/", api.run_summary, name="api_run_summary"),
    path("runs/<int:pk>/records.jsonl", api.run_records_jsonl, name="api_run_records_jsonl"),
    path("runs/<int:pk>/requests.csv", api.run_requests_csv, name="api_run_requests_csv"),
    path("compare/", api.compare, name="api_compare"),
]

urlpatterns = [
    path("", library.home, name="home"),
    *accounts_urls,
    *library_urls,
    *dataset_urls,
    *run_urls,
    *compare_urls,
    *automation_urls,
    *mirror_urls,
    path("api/v1/", include(api_urls)),
]
