"""Record identity: every normalized row is known by its source and its id in that source."""

ID_SEPARATOR = ":"


def record_id(source: str, external_id: str) -> str:
    """The store-wide id of a record: ``"{source}:{external_id}"``.

    It is derived, never chosen, so re-ingesting the same tool object always lands on the same row.
    """
    return f"{source}{ID_SEPARATOR}{external_id}"
