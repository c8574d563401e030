"""Routes of issue 5: comparisons and exports, paired A/B and schedules on plans, alerts, API tokens.
The REST API itself lives under ``/api/v1/`` (benchmarks.api.urls)."""

from django.urls import path, re_path

from benchmarks.views import api_tokens, automation, compare

FMT = r"(?P<fmt>csv|html)"

urlpatterns = [
    path("compare/", compare.compare, name="compare"),
    re_path(rf"^compare/export\.{FMT}$", compare.compare_export, name="compare_export"),
    path("comparisons/", compare.comparison_list, name="comparison_list"),
    path("comparisons/new/", compare.comparison_save, name="comparison_save"),
    path("comparisons/<int:pk>/", compare.comparison_detail, name="comparison_detail"),
    path("comparisons/<int:pk>/edit/", compare.comparison_edit, name="comparison_edit"),
    path("comparisons/<int:pk>/delete/", compare.comparison_delete, name="comparison_delete"),
    re_path(rf"^comparisons/(?P<pk>\d+)/export\.{FMT}$", compare.comparison_export, name="comparison_export"),
    re_path(rf"^runs/(?P<pk>\d+)/report\.{FMT}$", compare.run_export, name="run_export"),
    path("plans/<int:pk>/ab/", automation.plan_ab, name="plan_ab"),
    path("plans/<int:pk>/schedule/", automation.plan_schedule, name="plan_schedule"),
    path("alerts/", automation.alert_list, name="alert_list"),
    path("alerts/<int:pk>/dismiss/", automation.alert_dismiss, name="alert_dismiss"),
    path("api-tokens/", api_tokens.api_token_list, name="api_token_list"),
    path("api-tokens/new/", api_tokens.api_token_new, name="api_token_new"),
    path("api-tokens/<int:pk>/revoke/", api_tokens.api_token_revoke_view, name="api_token_revoke"),
]
