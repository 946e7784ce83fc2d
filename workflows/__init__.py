"""Deterministic Temporal workflows. No I/O here: activities do it."""
