"""Obeya's interchange format: records as JSON lines, imported all or nothing and exported back.

The format is specified in docs/import-format.md.
"""

from obeya.interchange.errors import MAX_ERRORS, ImportRejected, LineError
from obeya.interchange.jsonl_export import export_jsonl
from obeya.interchange.jsonl_import import ImportReport, import_jsonl

__all__ = ["MAX_ERRORS", "ImportRejected", "ImportReport", "LineError", "export_jsonl", "import_jsonl"]
