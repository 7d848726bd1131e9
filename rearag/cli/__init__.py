"""The `rearag` command line (being moved here from agent/cli.py)."""
