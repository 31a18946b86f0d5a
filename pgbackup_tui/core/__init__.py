"""The engine. Nothing in here imports textual or pgbackup_tui.ui (tests/test_layering.py checks)."""
