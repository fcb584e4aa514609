"""Alembic migrations of the algoengine database (run through :mod:`algoengine.persistence.db`)."""
