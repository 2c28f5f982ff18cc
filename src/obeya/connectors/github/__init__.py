"""GitHub: the collector (REST API to raw events) and the normalizer (raw events to records)."""
