"""The one time parser every connector uses: each tool's way of writing a time, read as the same instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from obeya.connectors.times import parse_time, required_time

MAY_FIRST = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", MAY_FIRST),  # GitHub
        ("2024-05-01T10:00:00.000Z", MAY_FIRST),  # GitLab REST
        ("2024-05-01T10:00:00.000+0000", MAY_FIRST),  # Jira Cloud
        ("2024-05-01T12:00:00.000+0200", MAY_FIRST),  # Jira Data Center in its own zone
        ("2024-05-01T10:00:00.12Z", MAY_FIRST + timedelta(milliseconds=120)),  # Opsgenie: 2 digits
        ("2024-05-01T10:00:00.123456Z", MAY_FIRST + timedelta(microseconds=123456)),  # PagerDuty
        ("2024-05-01T10:00:00.1234567Z", MAY_FIRST + timedelta(microseconds=123456)),  # Azure: 7, cut to 6
        ("2024-05-01T10:00:00.123456789+00:00", MAY_FIRST + timedelta(microseconds=123456)),
        ("2024-05-01 10:00:00", MAY_FIRST),  # ServiceNow, UTC
        ("2024-05-01T10:00:00", MAY_FIRST),  # no zone: UTC
        ("  2024-05-01T10:00:00Z  ", MAY_FIRST),  # surrounding blanks
    ],
)
def test_each_tools_time_is_read_as_the_same_instant(text: str, expected: datetime) -> None:
    moment = parse_time(text)
    assert moment == expected
    assert moment is not None and moment.tzinfo is not None


def test_an_offset_is_kept() -> None:
    moment = parse_time("2024-05-01T12:00:00+02:00")
    assert moment is not None and moment.utcoffset() == timedelta(hours=2)
    assert moment.tzinfo == timezone(timedelta(hours=2))


@pytest.mark.parametrize("value", [None, "", "   ", 1714557600])
def test_no_time_is_none(value: object) -> None:
    assert parse_time(value) is None


def test_a_time_that_is_not_one_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_time("2016-08-12 15:23:28 UTC")  # GitLab hooks' shape: their adapter rewrites it first
    with pytest.raises(ValueError, match="created_at is missing"):
        required_time(None, "created_at")
