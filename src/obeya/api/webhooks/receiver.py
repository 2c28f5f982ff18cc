"""Taking one delivery: authenticate, store it durably, then normalize it, and say what happened.

No HTTP here: `WebhookReceiver.receive` takes headers and the raw body and returns an `Answer` (status code
and JSON body), or raises `WebhookRefused` (401, 400, 413) having stored nothing. The order is the
durability contract (docs/webhooks.md):

1. the signature or token is checked over the raw bytes (401 when it does not match, or no secret is set);
2. the body is parsed enough to know the delivery id and event type (400 when it cannot be);
3. the delivery is stored as a raw event in its own committed transaction (a redelivery stops here: 200
   ``duplicate``);
4. it is normalized and its records written with a note of the outcome, in a second transaction. Nothing
   in this step can lose the delivery: a failure is noted and answered 202 with the error.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from obeya.api.webhooks import envelopes, github, gitlab, jira, pagerduty
from obeya.api.webhooks.deliveries import DeliveryLedger, SourceStatus
from obeya.api.webhooks.envelopes import Delivery, MalformedDelivery, ScopeKey
from obeya.api.webhooks.github import WebhookRecords
from obeya.api.webhooks.signatures import (
    pagerduty_signature_matches,
    prefixed_signature_matches,
    token_matches,
)
from obeya.config.webhooks import WebhookSettings
from obeya.model.records import Change, Incident, RawEvent, Record, WorkItem
from obeya.normalize.rules import MappingRules
from obeya.store.base import Store

log = logging.getLogger("obeya.webhooks")

TOOLS = ("github", "gitlab", "jira", "pagerduty")
_CONNECTION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")

_SIGNATURE_HEADERS = {
    "github": "X-Hub-Signature-256",
    "gitlab": "X-Gitlab-Token",
    "jira": "X-Hub-Signature",
    "pagerduty": "X-PagerDuty-Signature",
    "generic": "X-Obeya-Signature",
}


class WebhookRefused(Exception):
    """A delivery refused before anything was stored; `status_code` is the HTTP answer."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to a delivery that was stored (or was a redelivery)."""

    status_code: int
    body: dict[str, Any] = field(default_factory=dict)


class WebhookReceiver:
    """Receives deliveries into one store."""

    def __init__(
        self,
        store: Store,
        settings: WebhookSettings | None = None,
        rules: MappingRules | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings or WebhookSettings()
        self.rules = rules or MappingRules()
        self.ledger = DeliveryLedger(store)
        self._clock = clock

    # --- steps 1 and 2: authenticate and understand -----------------------------------------------------

    def _authenticate(self, tool: str, headers: Mapping[str, str], body: bytes) -> None:
        source = self.settings.source(tool)
        secret = source.secret()
        if secret is None:
            raise WebhookRefused(401, f"webhook secret not configured: set {source.secret_env}")
        header = _SIGNATURE_HEADERS[tool]
        given = headers.get(header.lower())
        if tool == "gitlab":
            ok = token_matches(secret, given)
        elif tool == "pagerduty":
            ok = pagerduty_signature_matches(secret, body, given)
        else:
            ok = prefixed_signature_matches(secret, body, given)
        if not ok:
            what = "is missing" if not given else "does not match the body and the secret"
            raise WebhookRefused(
                401, f"{header} {what}: check the webhook's secret in {tool} equals ${source.secret_env}"
            )

    def _understand(
        self, tool: str, headers: Mapping[str, str], body: bytes, source: str | None, payload_hash: str
    ) -> Delivery:
        if tool == "github":
            return envelopes.github_delivery(headers, body)
        if tool == "gitlab":
            return envelopes.gitlab_delivery(headers, body)
        if tool == "jira":
            return envelopes.jira_delivery(headers, body, payload_hash)
        if tool == "pagerduty":
            return envelopes.pagerduty_delivery(headers, body)
        return envelopes.generic_delivery(str(source), headers, body)

    # --- the whole delivery -------------------------------------------------------------------------------

    def receive(
        self,
        tool: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        source: str | None = None,
        connection: str | None = None,
    ) -> Answer:
        """Take one delivery for `tool` (``generic`` with `source`); `headers` have lowercase names."""
        if tool == "generic":
            _check_generic_source(source)
        if len(body) > self.settings.max_body_bytes:
            raise WebhookRefused(
                413, f"body is {len(body)} bytes, over the limit of {self.settings.max_body_bytes}"
            )
        if connection is not None and (not connection or not set(connection) <= _CONNECTION_CHARS):
            raise WebhookRefused(400, f"connection {connection[:80]!r} is not a name (letters, digits, _.-)")
        self._authenticate(tool, headers, body)
        payload_hash = hashlib.sha256(body).hexdigest()
        try:
            delivery = self._understand(tool, headers, body, source, payload_hash)
            text = body.decode("utf-8")
        except MalformedDelivery as error:
            raise WebhookRefused(400, str(error)) from None
        except UnicodeDecodeError as error:
            raise WebhookRefused(
                400, f"body is not UTF-8 text: {error.reason} at byte {error.start}"
            ) from None
        now = self._clock()
        raw = RawEvent(
            source=delivery.source,
            external_id=delivery.delivery_id,
            event_type=delivery.event_type,
            delivery_id=delivery.delivery_id,
            connection=connection,
            received_at=now,
            payload_hash=payload_hash,
            payload=text,
        )
        name = delivery.source
        if not self.ledger.store_new(raw):
            note = self.ledger.count_redelivery(raw, name, now)
            return Answer(
                200,
                {
                    "status": "duplicate",
                    "delivery_id": delivery.delivery_id,
                    "raw_event_id": raw.id,
                    "outcome": note.get("outcome"),
                },
            )
        return self._settle(raw, delivery, name, now)

    def _settle(self, raw: RawEvent, delivery: Delivery, name: str, now: datetime) -> Answer:
        base = {
            "delivery_id": delivery.delivery_id,
            "raw_event_id": raw.id,
            "event_type": delivery.event_type,
        }
        try:
            if not delivery.used:
                self.ledger.settle(raw, name, "ignored", now)
                return Answer(202, {"status": "ignored", **base})
            if delivery.scope is not None and not self._in_scope(delivery.scope):
                self.ledger.settle(
                    raw, name, "unknown_scope", now, detail={"unknown_scope": delivery.scope.label}
                )
                return Answer(
                    202,
                    {"status": "stored", "normalized": False, "unknown_scope": delivery.scope.label, **base},
                )
            normalizer = self._normalizers().get(delivery.source)
            reason = None
            if normalizer is None:
                reason = (
                    f"no {delivery.source} normalizer yet: kept as a raw event, to replay when there is one"
                )
            else:
                try:
                    result = normalizer(raw, delivery)
                except MalformedDelivery as unmapped:
                    reason = f"not normalized: {unmapped}"
            if reason is not None:
                self.ledger.settle(raw, name, "stored", now, detail={"reason": reason})
                return Answer(202, {"status": "stored", "normalized": False, "reason": reason, **base})
            if result.failures:
                raise NormalizationFailed("; ".join(result.failures))
            records, skipped = result.records, result.skipped
            written = self.ledger.settle(
                raw,
                name,
                "normalized",
                now,
                records=records,
                detail={"skipped": skipped} if skipped else None,
            )
            answer = {"status": "normalized", **base, "records": dict(sorted(written.items()))}
            if skipped:
                answer["skipped"] = skipped
            return Answer(200, answer)
        except Exception as error:  # the delivery is stored: whatever failed, say so and keep it
            message = f"{type(error).__name__}: {error}"[:1000]
            log.warning(
                "webhook %s delivery %s stored but not normalized: %s", name, delivery.delivery_id, message
            )
            try:
                self.ledger.settle(raw, name, "failed", now, detail={"error": message})
            except Exception:
                log.exception(
                    "webhook %s delivery %s: could not note the failure", name, delivery.delivery_id
                )
            return Answer(202, {"status": "stored", "normalized": False, "error": message, **base})

    def _normalizers(self) -> dict[str, Callable[[RawEvent, Delivery], WebhookRecords]]:
        """Per tool, its adapter: a delivery to records (`MalformedDelivery`: it cannot be mapped)."""
        return {
            "github": lambda raw, d: github.normalize_webhook(raw, d.payload, self.rules),
            "gitlab": self._normalize_gitlab,
            "jira": self._normalize_jira,
            "pagerduty": self._normalize_pagerduty,
        }

    def _stored_events(
        self, source: str, event_types: tuple[str, ...], connection: str | None
    ) -> list[RawEvent]:
        """Stored raw events a normalizer reads as context (catalogs, settings), of `connection` if named."""
        where = f"source = ? AND event_type IN ({', '.join('?' for _ in event_types)})"
        params: list[Any] = [source, *event_types]
        if connection is not None:
            where += " AND connection = ?"
            params.append(connection)
        return [e for e in self.store.fetch_records("raw_event", where, params) if isinstance(e, RawEvent)]

    def _previous(self, kind: str, record_id: str) -> Record | None:
        found = self.store.fetch_records(kind, "id = ?", [record_id])
        return found[0] if found else None

    def _normalize_jira(self, raw: RawEvent, delivery: Delivery) -> WebhookRecords:
        def previous(record_id: str) -> WorkItem | None:
            found = self._previous("work_item", record_id)
            return found if isinstance(found, WorkItem) else None

        context = self._stored_events("jira", jira.REFERENCE_TYPES, raw.connection)
        return jira.normalize_webhook(raw, delivery.payload, self.rules, context, previous)

    def _normalize_gitlab(self, raw: RawEvent, delivery: Delivery) -> WebhookRecords:
        def previous(record_id: str) -> Change | None:
            found = self._previous("change", record_id)
            return found if isinstance(found, Change) else None

        return gitlab.normalize_webhook(raw, delivery.payload, self.rules, previous)

    def _normalize_pagerduty(self, raw: RawEvent, delivery: Delivery) -> WebhookRecords:
        def previous(record_id: str) -> Incident | None:
            found = self._previous("incident", record_id)
            return found if isinstance(found, Incident) else None

        context = self._stored_events("pagerduty", (pagerduty.SETTINGS,), raw.connection)
        return pagerduty.normalize_webhook(raw, delivery.payload, self.rules, context, previous)

    def _in_scope(self, scope: ScopeKey) -> bool:
        keys = [k.lower() for k in scope.keys]
        placeholders = ", ".join("?" for _ in keys)
        rows = self.store.query(
            f"SELECT 1 FROM scopes WHERE tool = ? AND lower(object_key) IN ({placeholders}) LIMIT 1",
            [scope.tool, *keys],
        )
        return bool(rows)

    def status(self) -> dict[str, SourceStatus]:
        """Per source, what the receivers have taken (every tool listed, even with nothing yet)."""
        statuses = self.ledger.status()
        return {**{tool: SourceStatus() for tool in TOOLS}, **statuses}


class NormalizationFailed(Exception):
    """The normalizer could not make records of a stored delivery."""


def _check_generic_source(source: str | None) -> None:
    if source is None or not envelopes.GENERIC_SOURCE.match(source):
        raise WebhookRefused(
            404, f"generic source {str(source)[:80]!r} is not a name: 1-40 lowercase letters, digits, _ and -"
        )
    if source in envelopes.RESERVED_SOURCES:
        raise WebhookRefused(
            404, f"{source!r} has a receiver of its own: POST to /api/v1/webhooks/{source} instead"
        )
