"""Widgets of the desk's screens."""
