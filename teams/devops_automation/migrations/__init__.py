"""Alembic migrations of the state store's schema."""
