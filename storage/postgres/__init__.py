"""PostgreSQL storage through asyncpg (the `postgres` extra): the same units of work as the
SQLite modules of storage/, for several replicas on one database."""
