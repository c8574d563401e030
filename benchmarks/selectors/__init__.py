"""Reads. Everything here is team-aware: a user only ever gets objects of teams they belong to."""
