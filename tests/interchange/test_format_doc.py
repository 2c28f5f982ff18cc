"""docs/import-format.md documents every kind and every field of the model, in order."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from obeya.interchange.fields import describe_kind
from obeya.model import RECORD_BY_KIND

DOC = Path(__file__).resolve().parents[2] / "docs" / "import-format.md"


def _sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^### `([a-z_]+)`$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_kind_has_a_section() -> None:
    assert list(_sections()) == list(RECORD_BY_KIND)


@pytest.mark.parametrize("kind", list(RECORD_BY_KIND))
def test_every_field_is_listed_as_the_model_says(kind: str) -> None:
    section = _sections()[kind]
    rows = re.findall(r"^\| `([a-z_]+)` \| (.+?) \| (required|optional)", section, flags=re.MULTILINE)
    fields = describe_kind(kind)
    assert [name for name, _, _ in rows] == [f.name for f in fields]
    for (_, type_name, required), field in zip(rows, fields, strict=True):
        assert type_name == field.type, field.name
        assert (required == "required") == field.required, field.name


@pytest.mark.parametrize("kind", list(RECORD_BY_KIND))
def test_the_example_line_is_a_valid_record(kind: str) -> None:
    [example] = re.findall(r"```json\n(.+)\n```", _sections()[kind])
    obj = orjson.loads(example)
    assert obj.pop("kind") == kind
    RECORD_BY_KIND[kind].model_validate_json(orjson.dumps(obj), strict=True)
