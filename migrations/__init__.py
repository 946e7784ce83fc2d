"""Alembic migrations; applied with `deskpilot db upgrade`."""
