"""The SQLite backend: one module per aggregate, each function a unit of work over a sqlite3
connection run as one call on its thread; the group commit; the migrations. May import
storage's leaf modules and bot.domain."""
