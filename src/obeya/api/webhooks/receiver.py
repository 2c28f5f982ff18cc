"""Taking one delivery: authenticate, store it durably, answer, then normalize it in the background.

No HTTP here: `WebhookReceiver.check` takes headers and the raw body and returns the delivery to store, or
raises `WebhookRefused` (401, 400, 404, 413) having stored nothing; `submit` stores it and `answer` says
what to answer. The order is the durability contract (docs/webhooks.md):

1. the signature or token is checked over the raw bytes (401 when it does not match, or no secret is set);
2. the body is parsed enough to know the delivery id and event type (400 when it cannot be);
3. the delivery is stored as a raw event, committed together with the deliveries that arrived with it
   (`obeya.api.webhooks.intake`), and only then answered: 202 ``accepted`` (or ``ignored``), or 200
   ``duplicate`` for a redelivery;
4. the normalization worker (`obeya.api.webhooks.worker`) settles it shortly after, in a batch: its
   records and a note of the outcome, written in one transaction. A failure is noted and the raw event
   stays; a delivery a crash left unsettled is settled at the next `start`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from obeya.api.webhooks import azuredevops, envelopes, github, gitlab, jira, pagerduty
from obeya.api.webhooks.deliveries import DeliveryLedger, Redelivery, Settlement, SourceStatus
from obeya.api.webhooks.envelopes import Delivery, MalformedDelivery, ScopeKey
from obeya.api.webhooks.github import WebhookRecords
from obeya.api.webhooks.intake import DeliveryIntake, Taken
from obeya.api.webhooks.signatures import (
    basic_password_matches,
    pagerduty_signature_matches,
    prefixed_signature_matches,
    token_matches,
)
from obeya.api.webhooks.worker import NormalizationWorker
from obeya.config.webhooks import WebhookSettings
from obeya.connectors.config import ConnectionConfig
from obeya.connectors.scopes import learn_record_scopes, webhook_bindings
from obeya.linking import LinkingRules, update_links
from obeya.model.records import (
    Change,
    Deployment,
    Incident,
    RawEvent,
    Record,
    StatusTransition,
    WorkItem,
)
from obeya.normalize.rules import MappingRules
from obeya.store.base import Store

log = logging.getLogger("obeya.webhooks")

TOOLS = ("github", "gitlab", "jira", "pagerduty", "azuredevops")
_CONNECTION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")

_SIGNATURE_HEADERS = {
    "github": "X-Hub-Signature-256",
    "gitlab": "X-Gitlab-Token",
    "jira": "X-Hub-Signature",
    "pagerduty": "X-PagerDuty-Signature",
    "azuredevops": "Authorization",
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


@dataclass(frozen=True)
class Checked:
    """An authenticated delivery, understood, and its raw event ready to store."""

    raw: RawEvent
    delivery: Delivery


@dataclass(frozen=True)
class Recovered:
    """A delivery found stored but unsettled at start (the process stopped in between)."""

    raw: RawEvent


_Work = Taken | Recovered


@dataclass
class _Batch:
    """What the deliveries settled earlier in one batch left for the later ones to read."""

    written: dict[tuple[str, str], Record] = field(default_factory=dict)
    scopes: dict[tuple[str, tuple[str, ...]], bool] = field(default_factory=dict)
    context: dict[tuple[str, tuple[str, ...], str | None], list[RawEvent]] = field(default_factory=dict)
    projects: dict[str, str | None] = field(default_factory=dict)  # Azure DevOps: lower name → scope's


class WebhookReceiver:
    """Receives deliveries into one store: an intake that stores them, a worker that settles them."""

    def __init__(
        self,
        store: Store,
        settings: WebhookSettings | None = None,
        rules: MappingRules | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        linking: LinkingRules | None = None,
        connections: Sequence[ConnectionConfig] = (),
    ) -> None:
        self.store = store
        self.settings = settings or WebhookSettings()
        self.connections = {c.name: c for c in connections}
        self._bindings = webhook_bindings(connections)
        self.rules = rules or MappingRules()
        self.linking = linking or LinkingRules()
        self.ledger = DeliveryLedger(store)
        self.worker: NormalizationWorker[_Work] = NormalizationWorker(self.settle_batch, after=self.link)
        self.intake = DeliveryIntake(self.ledger, self.worker.submit)
        self._clock = clock

    def link(self) -> None:
        """Derive the trace links the settled deliveries can change (the worker calls it, debounced)."""
        report = update_links(self.store, self.linking)
        log.debug("webhook worker: %s", report.summary())

    # --- steps 1 and 2: authenticate and understand -----------------------------------------------------

    def _authenticate(self, tool: str, headers: Mapping[str, str], body: bytes) -> None:
        source = self.settings.source(tool)
        secret = source.secret()
        if secret is None:
            raise WebhookRefused(401, f"webhook secret not configured: set {source.secret_env}")
        if tool == "azuredevops":
            _authenticate_azuredevops(secret, headers, source.secret_env)
            return
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
        if tool == "azuredevops":
            return envelopes.azuredevops_delivery(headers, body)
        return envelopes.generic_delivery(str(source), headers, body)

    def check(
        self,
        tool: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        source: str | None = None,
        connection: str | None = None,
    ) -> Checked:
        """Steps 1 and 2 for `tool` (``generic`` with `source`; `headers` with lowercase names): the
        delivery to store, or `WebhookRefused`. Touches no store."""
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
        raw = RawEvent(
            source=delivery.source,
            external_id=delivery.delivery_id,
            event_type=delivery.event_type,
            delivery_id=delivery.delivery_id,
            connection=connection or self._connection_of(tool, delivery),
            received_at=self._clock(),
            payload_hash=payload_hash,
            payload=text,
        )
        return Checked(raw, delivery)

    def _connection_of(self, tool: str, delivery: Delivery) -> str | None:
        """The connection a delivery named none for belongs to: the receiver's own (`connection` in its
        settings), else the connection declaring the delivery's repository, project or service."""
        bound = self.settings.source(tool).connection
        if bound is not None or delivery.scope is None:
            return bound
        for key in delivery.scope.keys:
            name = self._bindings.get((delivery.scope.tool, key.lower()))
            if name is not None:
                return name
        return None

    def _learn(self, settled: Sequence[Settlement | Redelivery]) -> None:
        """Teach each bound connection's value stream the scopes of the records its deliveries gave,
        as a sync does (`obeya.connectors.scopes.learn_record_scopes`)."""
        by_connection: dict[str, list[Record]] = {}
        for item in settled:
            name = item.delivery.connection
            if isinstance(item, Settlement) and item.records and name in self.connections:
                by_connection.setdefault(str(name), []).extend(item.records)
        for name, records in by_connection.items():
            try:
                learn_record_scopes(self.store, self.connections[name], records)
            except Exception:  # the records are written: the next sync or start learns them too
                log.exception("webhooks: could not learn the scopes of connection %s", name)

    # --- step 3: store, then answer -----------------------------------------------------------------------

    def submit(self, checked: Checked) -> Future[Taken]:
        """Store the delivery with its group; the future resolves once it is committed (or was stored)."""
        return self.intake.submit(checked.raw, checked.delivery)

    @staticmethod
    def answer(taken: Taken) -> Answer:
        """The answer to a committed delivery: its outcome is the worker's to settle, shortly after."""
        base = {"delivery_id": taken.delivery.delivery_id, "raw_event_id": taken.raw.id}
        if not taken.new:
            return Answer(200, {"status": "duplicate", **base, "outcome": taken.outcome})
        status = "accepted" if taken.delivery.used else "ignored"
        return Answer(202, {"status": status, **base, "event_type": taken.delivery.event_type})

    def receive(
        self,
        tool: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        source: str | None = None,
        connection: str | None = None,
    ) -> Answer:
        """Take one delivery, blocking until it is stored (`check`, `submit`, `answer` in one call)."""
        checked = self.check(tool, headers, body, source=source, connection=connection)
        return self.answer(self.submit(checked).result())

    # --- step 4: settle, in the background ----------------------------------------------------------------

    def start(self) -> int:
        """Queue the deliveries stored but never settled (the process stopped in between); how many."""
        found = self.ledger.unsettled()
        self.worker.submit([Recovered(raw) for raw in found])
        if found:
            log.info("webhooks: settling %d deliveries stored before the last stop", len(found))
        return len(found)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every delivery stored so far is settled; whether it happened within `timeout` s."""
        return self.worker.wait_idle(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Stop taking deliveries and settle those queued (at most `timeout` s); whether all were settled
        (the others stay stored and are settled at the next `start`)."""
        self.intake.close()
        return self.worker.close(timeout)

    def settle_batch(self, items: list[_Work]) -> None:
        """Normalize a batch of stored deliveries and write their records and notes in one transaction.

        If that transaction fails, each delivery is written alone, and one that still fails is noted
        ``failed`` with the error: one bad delivery never holds the others back, and none is lost.
        """
        batch = _Batch()
        settled: list[Settlement | Redelivery] = []
        for item in items:
            if isinstance(item, Taken) and not item.new:
                settled.append(Redelivery(item.raw))
                continue
            settlement = self._settlement(item, batch)
            for record in settlement.records:
                batch.written[(record.kind, record.id)] = record
            settled.append(settlement)
            # Let the event loop and the intake take the GIL between deliveries: a batch normalizes for
            # tens of milliseconds, and answers waiting that long would be the slowest ones.
            time.sleep(0)
        now = self._clock()
        try:
            self.ledger.settle(settled, now)
            self._learn(settled)
            return
        except Exception as error:
            if len(settled) > 1:
                log.warning("webhooks: a batch of %d failed (%s); settling each alone", len(settled), error)
        for one in settled:
            try:
                self.ledger.settle([one], now)
                self._learn([one])
            except Exception as error:
                self._note_failure(one, error, now)

    def _note_failure(self, item: Settlement | Redelivery, error: Exception, now: datetime) -> None:
        delivery = item.delivery
        message = f"{type(error).__name__}: {error}"[:1000]
        if isinstance(item, Settlement):
            try:
                self.ledger.settle([Settlement(delivery, "failed", detail={"error": message})], now)
                log.warning(
                    "webhook %s delivery %s stored, its records not written: %s",
                    delivery.source,
                    delivery.delivery_id,
                    message,
                )
                return
            except Exception:
                pass
        log.exception(
            "webhook %s delivery %s: could not note its outcome", delivery.source, delivery.delivery_id
        )

    def _settlement(self, item: _Work, batch: _Batch) -> Settlement:
        raw = item.raw
        try:
            if isinstance(item, Taken):
                delivery = item.delivery
            else:
                delivery = envelopes.stored_delivery(
                    raw.source, str(raw.delivery_id), raw.event_type, raw.payload
                )
            if not delivery.used:
                return Settlement(raw, "ignored")
            if delivery.scope is not None and not self._in_scope(delivery.scope, batch):
                return Settlement(raw, "unknown_scope", detail={"unknown_scope": delivery.scope.label})
            normalizer = self._normalizers(batch).get(delivery.source)
            if normalizer is None:
                reason = (
                    f"no {delivery.source} normalizer yet: kept as a raw event, to replay when there is one"
                )
                return Settlement(raw, "stored", detail={"reason": reason})
            try:
                result = normalizer(raw, delivery)
            except MalformedDelivery as unmapped:
                return Settlement(raw, "stored", detail={"reason": f"not normalized: {unmapped}"})
            if result.failures:
                raise NormalizationFailed("; ".join(result.failures))
            detail = {"skipped": result.skipped} if result.skipped else None
            return Settlement(raw, "normalized", result.records, detail)
        except Exception as error:  # the delivery is stored: whatever failed, say so and keep it
            message = f"{type(error).__name__}: {error}"[:1000]
            log.warning(
                "webhook %s delivery %s stored but not normalized: %s", raw.source, raw.delivery_id, message
            )
            return Settlement(raw, "failed", detail={"error": message})

    def _normalizers(self, batch: _Batch) -> dict[str, Callable[[RawEvent, Delivery], WebhookRecords]]:
        """Per tool, its adapter: a delivery to records (`MalformedDelivery`: it cannot be mapped)."""
        return {
            "github": lambda raw, d: github.normalize_webhook(
                raw, d.payload, self.rules, lambda run: self._github_deployed(run, batch)
            ),
            "gitlab": lambda raw, d: self._normalize_gitlab(raw, d, batch),
            "jira": lambda raw, d: self._normalize_jira(raw, d, batch),
            "pagerduty": lambda raw, d: self._normalize_pagerduty(raw, d, batch),
            "azuredevops": lambda raw, d: self._normalize_azuredevops(raw, d, batch),
        }

    def _github_deployed(self, run_id: str, batch: _Batch) -> bool:
        """Whether a GitHub deployment (not one by job name), stored or written earlier in the batch, was
        made by the run `run_id`."""
        for record in batch.written.values():
            if (
                isinstance(record, Deployment)
                and record.source == "github"
                and record.pipeline_run_id == run_id
                and not record.external_id.endswith("/deployment-by-name")
            ):
                return True
        rows = self.store.query(
            "SELECT 1 FROM deployments WHERE source = 'github' AND pipeline_run_id = ? "
            "AND external_id NOT LIKE '%/deployment-by-name' LIMIT 1",
            [run_id],
        )
        return bool(rows)

    def _stored_events(
        self, source: str, event_types: tuple[str, ...], connection: str | None, batch: _Batch
    ) -> list[RawEvent]:
        """Stored raw events a normalizer reads as context (catalogs, settings), of `connection` if named."""
        key = (source, event_types, connection)
        if key not in batch.context:
            where = f"source = ? AND event_type IN ({', '.join('?' for _ in event_types)})"
            params: list[Any] = [source, *event_types]
            if connection is not None:
                where += " AND connection = ?"
                params.append(connection)
            found = self.store.fetch_records("raw_event", where, params)
            batch.context[key] = [e for e in found if isinstance(e, RawEvent)]
        return batch.context[key]

    def _previous(self, kind: str, record_id: str, batch: _Batch) -> Record | None:
        """The record as it stands: as a delivery earlier in the batch left it, else as stored."""
        if (kind, record_id) in batch.written:
            return batch.written[(kind, record_id)]
        found = self.store.fetch_records(kind, "id = ?", [record_id])
        return found[0] if found else None

    def _normalize_jira(self, raw: RawEvent, delivery: Delivery, batch: _Batch) -> WebhookRecords:
        def previous(record_id: str) -> WorkItem | None:
            found = self._previous("work_item", record_id, batch)
            return found if isinstance(found, WorkItem) else None

        context = self._stored_events("jira", jira.REFERENCE_TYPES, raw.connection, batch)
        return jira.normalize_webhook(raw, delivery.payload, self.rules, context, previous)

    def _normalize_gitlab(self, raw: RawEvent, delivery: Delivery, batch: _Batch) -> WebhookRecords:
        def previous(record_id: str) -> Change | None:
            found = self._previous("change", record_id, batch)
            return found if isinstance(found, Change) else None

        def previous_deployment(record_id: str) -> Deployment | None:
            found = self._previous("deployment", record_id, batch)
            return found if isinstance(found, Deployment) else None

        def previous_transition(record_id: str) -> StatusTransition | None:
            found = self._previous("status_transition", record_id, batch)
            return found if isinstance(found, StatusTransition) else None

        return gitlab.normalize_webhook(
            raw,
            delivery.payload,
            self.rules,
            previous,
            previous_deployment=previous_deployment,
            previous_transition=previous_transition,
        )

    def _normalize_pagerduty(self, raw: RawEvent, delivery: Delivery, batch: _Batch) -> WebhookRecords:
        def previous(record_id: str) -> Incident | None:
            found = self._previous("incident", record_id, batch)
            return found if isinstance(found, Incident) else None

        context = self._stored_events("pagerduty", (pagerduty.SETTINGS,), raw.connection, batch)
        return pagerduty.normalize_webhook(raw, delivery.payload, self.rules, context, previous)

    def _normalize_azuredevops(self, raw: RawEvent, delivery: Delivery, batch: _Batch) -> WebhookRecords:
        def previous(kind: str, record_id: str) -> Record | None:
            return self._previous(kind, record_id, batch)

        def project_name(name: str) -> str:
            # Project names are case-insensitive in Azure DevOps; the sync keys records by the name the
            # connection gives (its scope), so a hook's "Fabrikam" must land on a sync's "fabrikam".
            if name.lower() not in batch.projects:
                rows = self.store.query(
                    "SELECT object_key FROM scopes WHERE tool = 'azuredevops' AND object_type = 'project' "
                    "AND lower(object_key) = ? ORDER BY object_key LIMIT 1",
                    [name.lower()],
                )
                batch.projects[name.lower()] = str(rows[0][0]) if rows else None
            return batch.projects[name.lower()] or name

        return azuredevops.normalize_webhook(
            raw, delivery.payload, self.rules, previous, project_name=project_name
        )

    def _in_scope(self, scope: ScopeKey, batch: _Batch) -> bool:
        keys = tuple(k.lower() for k in scope.keys)
        found = batch.scopes.get((scope.tool, keys))
        if found is None:
            placeholders = ", ".join("?" for _ in keys)
            rows = self.store.query(
                f"SELECT 1 FROM scopes WHERE tool = ? AND lower(object_key) IN ({placeholders}) LIMIT 1",
                [scope.tool, *keys],
            )
            found = batch.scopes[(scope.tool, keys)] = bool(rows)
        return found

    def status(self) -> dict[str, SourceStatus]:
        """Per source, what the receivers have taken (every tool listed, even with nothing yet)."""
        statuses = self.ledger.status()
        return {**{tool: SourceStatus() for tool in TOOLS}, **statuses}


class NormalizationFailed(Exception):
    """The normalizer could not make records of a stored delivery."""


def _authenticate_azuredevops(secret: bytes, headers: Mapping[str, str], variable: str) -> None:
    """Azure DevOps signs nothing: the service hook sends the secret as its basic authentication
    password, or in an ``X-Obeya-Token`` header (both compared in constant time)."""
    basic = headers.get("authorization")
    token = headers.get("x-obeya-token")
    if basic_password_matches(secret, basic) or token_matches(secret, token):
        return
    if not basic and not token:
        what = "neither Authorization (basic authentication) nor X-Obeya-Token is sent"
    else:
        what = "the basic authentication password / X-Obeya-Token does not match"
    raise WebhookRefused(
        401,
        f"{what}: set the service hook's basic authentication password (or an X-Obeya-Token "
        f"header) to the value of ${variable}",
    )


def _check_generic_source(source: str | None) -> None:
    if source is None or not envelopes.GENERIC_SOURCE.match(source):
        raise WebhookRefused(
            404, f"generic source {str(source)[:80]!r} is not a name: 1-40 lowercase letters, digits, _ and -"
        )
    if source in envelopes.RESERVED_SOURCES:
        raise WebhookRefused(
            404, f"{source!r} has a receiver of its own: POST to /api/v1/webhooks/{source} instead"
        )
