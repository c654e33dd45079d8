"""Mail in: sources (Maildir drop folders, IMAP), parsing, routing, and the `desk-ingest` daemon."""
