"""Jira (Cloud and Data Center): the collector (REST API to raw events) and the normalizer (to records)."""
