"""The Textual front: `run_app()` opens the TUI (see app.py). Nothing in core/ imports this."""
