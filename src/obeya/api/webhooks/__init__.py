"""Webhook receivers: GitHub, GitLab, Jira, PagerDuty, Azure DevOps and a generic one, stored first, then
normalized.

Include them in the app with ``app.include_router(webhooks_router(settings, rules))``; docs/webhooks.md
says how to set each tool up and what every answer means.
"""

from obeya.api.webhooks.receiver import Answer, WebhookReceiver, WebhookRefused
from obeya.api.webhooks.router import PREFIX, webhooks_router
from obeya.config.webhooks import SourceSettings, WebhookSettings

__all__ = [
    "PREFIX",
    "Answer",
    "SourceSettings",
    "WebhookReceiver",
    "WebhookRefused",
    "WebhookSettings",
    "webhooks_router",
]
