"""pgbackup-tui: dump and restore PostgreSQL with exact selection, honest progress and a TUI."""

__version__ = "0.1.0"
