"""Connectors: collect each tool's answers as raw events, then normalize them into the common model."""
