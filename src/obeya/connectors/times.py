"""Times as the tools write them, parsed once for every connector."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (``Z``, offsets, fractions of any length) or ServiceNow's ``YYYY-MM-DD HH:MM:SS``
    (UTC), as an aware datetime; None for a missing or empty value."""
    if type(value) is str:
        # Python 3.11 reads most tools' own times directly (``Z``, ``+0000``, 3 or 6 digits of fraction),
        # with the same result as below; replay parses hundreds of thousands of them, and the regular
        # expression was most of the cost.
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", text)
    if match:  # Python wants 6 digits of fraction at most (Opsgenie writes 2, PagerDuty 6)
        text = f"{match.group(1)}.{match.group(2)[:6].ljust(6, '0')}{match.group(3)}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def required_time(value: Any, what: str = "a time") -> datetime:
    """Like `parse_time`, for a time that must be there: a missing one is an error naming `what`."""
    moment = parse_time(value)
    if moment is None:
        raise ValueError(f"{what} is missing")
    return moment
