from django.urls import path

from benchmarks.api import views

urlpatterns = [
    path("plans/", views.plan_list, name="api_plan_list"),
    path("plans/<int:pk>/runs/", views.run_start_view, name="api_run_start"),
    path("runs/", views.run_list, name="api_run_list"),
    path("runs/<int:pk>/", views.run_detail, name="api_run"),
    path("runs/<int:pk>/summary/", views.run_summary, name="api_run_summary"),
    path("compare/", views.compare, name="api_compare"),
]
