"""What atwh shows: rich tables for people, JSON, NDJSON and CSV for programs."""
