"""Why an import was rejected: one `LineError` per problem, gathered into `ImportRejected`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_ERRORS = 50
"""An import stops reading after this many errors."""


@dataclass(frozen=True)
class LineError:
    """One problem on one line of an import file (lines count from 1; `field` is None for the whole line)."""

    line: int
    field: str | None
    problem: str
    expected: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field {self.field!r}" if self.field else "")
        text = f"{where}: {self.problem}"
        if self.expected:
            text += f" (expected {self.expected})"
        return text


class ImportRejected(Exception):
    """The import file was rejected as a whole; nothing was written to the store."""

    def __init__(self, errors: Sequence[LineError], *, truncated: bool = False) -> None:
        self.errors: list[LineError] = sorted(errors, key=lambda e: e.line)
        self.truncated = truncated
        super().__init__(str(self))

    def __str__(self) -> str:
        count = f"{len(self.errors)}{'+' if self.truncated else ''}"
        head = f"import rejected, nothing was written: {count} error{'s' if len(self.errors) != 1 else ''}"
        lines = [head, *(f"  {e}" for e in self.errors)]
        if self.truncated:
            lines.append(f"  (stopped reading after {MAX_ERRORS} errors: the file may have more)")
        return "\n".join(lines)
