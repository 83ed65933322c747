"""Configuration: the environment (settings.py), and the channel and workspace settings kept
in the database (channels.py). May import: bot.domain and storage."""
