"""The database: SQLAlchemy models, engines and sessions, Alembic migrations.

SQLite (a file under the platform's home) by default, PostgreSQL by URL; the same models and
migrations serve both. Importing this package connects to nothing.
"""
