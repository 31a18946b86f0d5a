"""Headless subcommands. Each module turns parsed arguments into core calls and prints results."""
