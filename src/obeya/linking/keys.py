"""Work item keys mentioned in commit messages, change titles and branches: `implemented_by` links.

The text is scanned in Python (regular expressions over Arrow columns, one pass); the keys found are
joined to the work items' keys in Arrow, so only keys of known items make links.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from obeya.linking.derived import candidates, empty_candidates, fetch, rows_to_scan
from obeya.linking.rules import GITHUB_ISSUE, JIRA_KEY, LinkingRules
from obeya.store.base import Store

COMMIT_MESSAGE_CONFIDENCE = 0.9
CHANGE_TITLE_CONFIDENCE = 0.95
CHANGE_BRANCH_CONFIDENCE = 0.9

_TEXTS = pa.schema([("id", pa.string()), ("repo", pa.string()), ("text", pa.string())])


def _key_candidates(captured: str, repo: str) -> list[tuple[str, str]]:
    """(candidate item key, the text as mentioned): an all-digit capture is a GitHub-style issue number."""
    if captured.isdigit():
        return [(f"{repo}#{captured}", f"#{captured}"), (f"#{captured}", f"#{captured}")]
    return [(captured, captured)]


def item_ids_by_key(store: Store) -> dict[str, list[str]]:
    """Work item ids by key (a key may be held by items of several sources)."""
    items = fetch(
        store, "SELECT key, id FROM work_items", (), pa.schema([("key", pa.string()), ("id", pa.string())])
    )
    by_key: dict[str, list[str]] = {}
    for key, item_id in zip(items["key"].to_pylist(), items["id"].to_pylist(), strict=True):
        by_key.setdefault(key, []).append(item_id)
    return by_key


def _links_from_texts(
    texts: pa.Table, by_key: dict[str, list[str]], rules: LinkingRules, what: str, confidence: float
) -> pa.Table:
    """work item → record candidates for every known key mentioned in the `text` column."""
    from_ids: list[str] = []
    to_ids: list[str] = []
    evidence: list[str] = []
    ids = texts["id"].to_pylist()
    repos = texts["repo"].to_pylist()
    values = texts["text"].to_pylist()
    for source, pattern in zip(rules.key_patterns, rules.compiled_patterns, strict=True):
        for row in rows_to_scan(texts["text"], source, (JIRA_KEY, GITHUB_ISSUE)):
            for match in pattern.finditer(values[row]):
                captured = match.group(1)
                if captured is None:
                    continue
                for key, as_written in _key_candidates(captured, repos[row] or ""):
                    for item_id in by_key.get(key, ()):
                        from_ids.append(item_id)
                        to_ids.append(ids[row])
                        evidence.append(f"{what} mentions {as_written}")
    if not from_ids:
        return empty_candidates()
    return candidates(from_ids, to_ids, evidence, confidence)


_CHANGE_PARTS: Sequence[tuple[str, str, float]] = (
    ("title", "change title", CHANGE_TITLE_CONFIDENCE),
    ("branch", "change branch", CHANGE_BRANCH_CONFIDENCE),
)
_REGEX_SPECIAL = frozenset("\\.^$|?*+()[]{}")
_NEEDLES_PER_PATTERN = 200


def commit_links(store: Store, rules: LinkingRules, by_key: dict[str, list[str]]) -> pa.Table:
    """work item → commit (`implemented_by`): the item's key in the commit message (confidence 0.9)."""
    if not by_key:
        return empty_candidates()
    commits = fetch(store, "SELECT id, repo, message FROM commits", (), _TEXTS)
    return _links_from_texts(commits, by_key, rules, "commit message", COMMIT_MESSAGE_CONFIDENCE)


def change_links(store: Store, rules: LinkingRules, by_key: dict[str, list[str]]) -> pa.Table:
    """work item → change (`implemented_by`): key in the title (0.95) or the branch (0.9)."""
    if not by_key:
        return empty_candidates()
    found = [
        _links_from_texts(
            fetch(store, f"SELECT id, repo, {column} FROM changes", (), _TEXTS),
            by_key,
            rules,
            what,
            confidence,
        )
        for column, what, confidence in _CHANGE_PARTS
    ]
    return pa.concat_tables(found)


def _needle(key: str) -> str:
    """What a text must contain to mention `key`: the key itself, or for ``R#12`` and ``#12`` the number
    (every pattern's capture is a part of the text, and a number capture makes both keys)."""
    _, sep, number = key.rpartition("#")
    text = number if sep and number.isdigit() else key
    return "".join(f"\\{ch}" if ch in _REGEX_SPECIAL else ch for ch in text)


def _mentioning(texts: pa.ChunkedArray, keys: Sequence[str]) -> pa.Array:
    """A mask of the texts that may mention one of `keys` (a superset: each is scanned exactly after)."""
    needles = sorted({_needle(k) for k in keys if k})
    mask = pc.fill_null(pc.equal(pc.utf8_length(texts), -1), False)  # all false
    for start in range(0, len(needles), _NEEDLES_PER_PATTERN):
        pattern = "|".join(needles[start : start + _NEEDLES_PER_PATTERN])
        mask = pc.or_(mask, pc.fill_null(pc.match_substring_regex(texts, pattern), False))
    return mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask


def _scoped_texts(
    store: Store, columns: Sequence[str], table: str, ids_table: str, keys: Sequence[str]
) -> dict[str, pa.Table]:
    """Per text column, the rows (id, repo, text) of records in `ids_table` or whose text may mention one
    of `keys`: only these can have gained or lost a key link."""
    if not keys:
        return {
            column: fetch(
                store,
                f"SELECT id, repo, {column} FROM {table} WHERE id IN (SELECT item_id FROM {ids_table})",
                (),
                _TEXTS,
            )
            for column in columns
        }
    # typed: an empty answer of PostgreSQL's comes back with untyped (null) columns
    every = fetch(
        store,
        f"SELECT id, repo, {', '.join(columns)} FROM {table}",
        (),
        pa.schema([(name, pa.string()) for name in ("id", "repo", *columns)]),
    )
    listed = fetch(store, f"SELECT item_id FROM {ids_table}", (), pa.schema([("item_id", pa.string())]))
    mask = pc.is_in(every.column("id"), value_set=listed["item_id"])
    for column in columns:
        mask = pc.or_(mask, _mentioning(every.column(column), keys))
    every = every.filter(mask)
    return {
        column: pa.table(
            [
                every.column("id").cast(pa.string()),
                every.column("repo").cast(pa.string()),
                every.column(column).cast(pa.string()),
            ],
            schema=_TEXTS,
        )
        for column in columns
    }


def commit_links_within(
    store: Store, rules: LinkingRules, by_key: dict[str, list[str]], ids_table: str, keys: Sequence[str]
) -> tuple[pa.Table, pa.Array]:
    """`commit_links` of the commits listed in SQL table `ids_table` and of those whose message may
    mention one of `keys`; and the ids of all those commits (the scope the links were derived for)."""
    texts = _scoped_texts(store, ("message",), "commits", ids_table, keys)["message"]
    links = _links_from_texts(texts, by_key, rules, "commit message", COMMIT_MESSAGE_CONFIDENCE)
    return links, texts["id"].combine_chunks()


def change_links_within(
    store: Store, rules: LinkingRules, by_key: dict[str, list[str]], ids_table: str, keys: Sequence[str]
) -> tuple[pa.Table, pa.Array]:
    """`change_links` of the changes in `ids_table` or whose title or branch may mention one of `keys`;
    and the ids of those changes."""
    texts = _scoped_texts(store, ("title", "branch"), "changes", ids_table, keys)
    links = pa.concat_tables(
        [
            _links_from_texts(texts[column], by_key, rules, what, confidence)
            for column, what, confidence in _CHANGE_PARTS
        ]
    )
    return links, texts["title"]["id"].combine_chunks()
