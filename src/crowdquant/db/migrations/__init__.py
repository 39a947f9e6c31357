"""The Alembic environment for `crowdquant.db`; run it through `crowdquant.db.migrate`."""
