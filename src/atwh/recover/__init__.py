"""Recovering from an endpoint's outage: `atwh replay` re-sends what failed, signed as
Allthings signs it, and `atwh reconcile` compares the provider's log with what was stored.

Modules: selection (which events to send), replay (signing, sending, the report), ledger
(every replay attempt, in SQLite), fixtures (`--save`, `--as curl`), reconcile.
"""
