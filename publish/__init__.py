"""The status site for the platform's users: what `desk publish DIR` writes, the daemon keeps
current and `desk serve` shows under /status.

`model` gathers what users may see from the database, `render` turns it into the site's files
(HTML pages, status.json, feed.atom, windows.ics), `site` writes them atomically and re-renders
when the database's digest moves. It imports `db` only; `tui` and `ingest` both import it.
"""
