"""Watching a webhook: its health from the delivery log (stats) and new attempts as they
appear (tail). Pure computation and polling over the client; no rich."""
