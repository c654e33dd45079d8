"""The desk's data: schema, store API, rules about the data, and configuration.

The only package that speaks SQL. `ingest/` and `tui/` call the functions here and
meet nowhere else.
"""
