"""Talks to the Webhooks API: credentials, GraphQL operations, paging, and what comes back."""
