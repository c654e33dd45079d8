"""The desk's screens: the main list, one ticket, help."""
