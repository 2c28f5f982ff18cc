"""Errors of the traceability layer, each saying what was wrong and what to do."""

from __future__ import annotations


class LinkingError(Exception):
    """Base of the traceability errors."""


class UnknownWorkItemKey(LinkingError, LookupError):
    """No work item has the key asked for."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"no work item has the key {key!r}: check the spelling (keys are case-sensitive, e.g. PAY-123) "
            "and that its project has been imported"
        )
        self.key = key


class AmbiguousWorkItemKey(LinkingError, LookupError):
    """Several work items (from different sources) have the key asked for."""

    def __init__(self, key: str, ids: list[str]) -> None:
        super().__init__(
            f"{len(ids)} work items have the key {key!r} ({', '.join(ids)}): pass one of these ids instead"
        )
        self.key = key
        self.ids = ids


class UnknownValueStream(LinkingError, LookupError):
    """No value stream has the id asked for."""

    def __init__(self, value_stream_id: str) -> None:
        super().__init__(f"no value stream has the id {value_stream_id!r}: `obeya streams` lists them")
        self.value_stream_id = value_stream_id
