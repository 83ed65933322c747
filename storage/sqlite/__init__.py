"""The SQLite backend: one module per aggregate, each function a unit of work over a sqlite3
connection, run as one call on the connection's thread; the group commit; the migrations.
May import: bot.domain, storage.contract, storage.errors, storage.models, storage.rows and
storage.rules."""
