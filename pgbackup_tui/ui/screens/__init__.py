"""Modal screens: dialogs, prompts, help. One screen per module."""
