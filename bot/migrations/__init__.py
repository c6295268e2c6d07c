"""Alembic migrations of the request store; applied automatically at start (`bot.store`)."""
