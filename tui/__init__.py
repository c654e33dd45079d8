"""People's side of the desk: the Textual app and the `desk` command with its subcommands."""
