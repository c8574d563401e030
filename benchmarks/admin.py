"""The Django admin: where an administrator sets a team's own quotas (runs and load slots at once)."""

from __future__ import annotations

from django.contrib import admin

from benchmarks.models import Team


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "max_concurrent_runs", "max_load_slots", "created_at")
    fields = ("name", "max_concurrent_runs", "max_load_slots")
    search_fields = ("name",)
