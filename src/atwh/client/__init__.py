"""Talks to the Webhooks API: credentials, the GraphQL operations in `queries/`, paging and
retries, and the deliveries and webhooks it returns, parsed, filtered and grouped.

Modules: api (ApiClient), auth, queries, model (Delivery, Webhook), filters, failures; paths,
config, dates and the bounded transport are on the ground floor, `atwh.core`.
"""

from typing import TYPE_CHECKING

from atwh.core.lazy import exports

if TYPE_CHECKING:
    from atwh.client.api import ApiClient, Page
    from atwh.client.auth import StaticToken, credentials
    from atwh.client.failures import FailureSummary
    from atwh.client.filters import DeliveryFilter
    from atwh.client.model import Delivery, Webhook

__all__ = [
    "ApiClient",
    "Delivery",
    "DeliveryFilter",
    "FailureSummary",
    "Page",
    "StaticToken",
    "Webhook",
    "credentials",
]
__getattr__, __dir__ = exports(
    __name__,
    {
        "ApiClient": "api",
        "Page": "api",
        "StaticToken": "auth",
        "credentials": "auth",
        "FailureSummary": "failures",
        "DeliveryFilter": "filters",
        "Delivery": "model",
        "Webhook": "model",
    },
)
