"""The REST API (``/api/v1/``): team-scoped tokens, plans, runs and their summaries."""
