"""Widgets of the main screen. One widget per module."""
