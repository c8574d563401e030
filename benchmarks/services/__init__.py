"""Writes, named ``<entity>_<verb>`` with keyword-only arguments. Views and tasks only call these."""
