"""Dataset pages, under /datasets/ (included from benchmarks/urls.py)."""

from django.urls import path

from benchmarks.views import datasets

V = "<int:pk>/v<int:number>"

urlpatterns = [
    path("", datasets.dataset_list, name="dataset_list"),
    path("new/", datasets.dataset_upload, name="dataset_create"),
    path("synthetic/", datasets.dataset_generate, name="dataset_synthetic"),
    path("buckets/", datasets.team_buckets_edit, name="dataset_buckets"),
    path("<int:pk>/", datasets.dataset_detail, name="dataset_detail"),
    path("<int:pk>/edit/", datasets.dataset_edit, name="dataset_edit"),
    path("<int:pk>/clone/", datasets.dataset_clone_view, name="dataset_clone"),
    path("<int:pk>/delete/", datasets.dataset_delete, name="dataset_delete"),
    path(f"{V}/", datasets.version_detail, name="dataset_version"),
    path(f"{V}/progress.json", datasets.version_progress, name="dataset_progress"),
    path(f"{V}/items.jsonl", datasets.version_download, name="dataset_download"),
    path(f"{V}/count/", datasets.version_count, name="dataset_count"),
]
