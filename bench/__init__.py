"""Benchmarks: the bot against a bare Bolt app, side by side in one run. `python -m bench`."""
