"""A webhook's shared signing secret, read from the API (`webhook.secret`)."""

from __future__ import annotations

from atwh.client.api import ApiClient
from atwh.errors import NotFoundError, UsageError, printable


def webhook_secret(client: ApiClient, webhook_id: str) -> str:
    """The secret Allthings signs the webhook's deliveries with. NotFoundError when the
    webhook is not there; UsageError (pass --secret) when the API gives none."""
    data = client.execute("QueryWebhookSecret", {"id": webhook_id})
    hook = data.get("webhook")
    if not isinstance(hook, dict):
        raise NotFoundError(f"webhook {printable(webhook_id, 80)} not found")
    secret = hook.get("secret")
    if not isinstance(secret, str) or not secret:
        raise UsageError(
            f"the API gives no secret for webhook {printable(webhook_id, 80)}",
            hint="pass --secret instead",
        )
    return secret
