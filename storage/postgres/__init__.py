"""The PostgreSQL backend (asyncpg, several replicas on one database): the same query
modules as storage/sqlite/, as async functions each run in one short transaction; migrations
under an advisory lock; NOTIFY for new deliveries. transfer.py copies an SQLite file in, so
it alone reads storage/sqlite/. May import: bot.domain, storage.contract, storage.errors,
storage.location, storage.models, storage.rows, storage.rules and storage.sqlite."""
