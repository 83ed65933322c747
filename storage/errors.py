"""The errors the store raises, whichever backend holds the data."""


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer feedback-bot than this one."""


class StorageError(RuntimeError):
    """The database cannot do its part right now (disk full, I/O error, file deleted): the
    caller answers 5xx so that the work is tried again, never 200 for a write that did not
    happen. The message is one line, fit for a log or an HTTP error."""


class DatabaseMovedError(StorageError):
    """The file at FEEDBACK_DB is no longer the one this process opened."""


class DatabaseOpenError(RuntimeError):
    """The database file cannot be opened or written; the message says what is wrong."""
