"""The dashboard app: teams, endpoints, datasets, profiles, plans and runs around ``runner``."""
