"""What atwh shows: rich tables and panels for people (tables), JSON, NDJSON and CSV for
programs (export)."""
