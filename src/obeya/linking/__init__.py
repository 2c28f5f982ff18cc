"""Traceability: links from work items to commits, changes, pipeline runs, deployments and incidents.

`derive_links` derives them all (see docs/traceability.md for every rule, its evidence and confidence),
`update_links` re-derives only what the data written since the last derivation can change,
`traceability_coverage` says how much of the delivery is traced, `trace` follows one work item.
"""

from obeya.linking.coverage import Coverage, TraceabilityCoverage, traceability_coverage
from obeya.linking.derive import LINKS, LinkingReport, derive_links, update_links
from obeya.linking.derived import SyncCount
from obeya.linking.errors import AmbiguousWorkItemKey, LinkingError, UnknownValueStream, UnknownWorkItemKey
from obeya.linking.rules import LinkingRules
from obeya.linking.trace import TraceChain, TraceNode, TraceStep, trace

__all__ = [
    "LINKS",
    "AmbiguousWorkItemKey",
    "Coverage",
    "LinkingError",
    "LinkingReport",
    "LinkingRules",
    "SyncCount",
    "TraceChain",
    "TraceNode",
    "TraceStep",
    "TraceabilityCoverage",
    "UnknownValueStream",
    "UnknownWorkItemKey",
    "derive_links",
    "trace",
    "traceability_coverage",
    "update_links",
]
