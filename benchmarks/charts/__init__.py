"""Plotly figures from plain data (never a query), returned as JSON-ready dicts for the pages: one
module per page family."""
