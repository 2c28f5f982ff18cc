"""The shared HTTP client against the local recorded GitHub server: paging, rate limits, retries, errors."""

from __future__ import annotations

import httpx
import pytest
from github_server import ANTS, FakeClock, FakeGitHub

from obeya.connectors.config import GitHubConnectionConfig
from obeya.connectors.errors import (
    AuthenticationError,
    MalformedResponseError,
    MissingCredentialError,
    NotFoundError,
    RetriesExhaustedError,
)
from obeya.connectors.github.collector import github_client
from obeya.connectors.http import (
    HttpClient,
    LinkHeaderPaging,
    OffsetPaging,
    PageNumberPaging,
    RetryPolicy,
    TokenAuth,
    TokenPaging,
)

PULLS = f"/repos/{ANTS}/pulls"


def _numbers(client: HttpClient) -> list[int]:
    return [
        item["number"]
        for page in client.pages(f"repos/{ANTS}/pulls", LinkHeaderPaging())
        for item in page.items
    ]


def test_link_header_paging_follows_rel_next_over_every_page(client: HttpClient, github: FakeGitHub) -> None:
    numbers = _numbers(client)

    assert len(numbers) == 49 == len(set(numbers))
    assert [r.query.get("page", "1") for r in github.requested(PULLS)] == ["1", "2", "3", "4", "5"]
    assert all(r.query["per_page"] == "100" for r in github.requested(PULLS))
    assert github.requests[0].headers["Authorization"] == "Bearer test-token"
    assert github.requests[0].headers["X-GitHub-Api-Version"] == "2022-11-28"


def test_exhausted_rate_limit_waits_until_reset_then_continues(
    client: HttpClient, github: FakeGitHub, clock: FakeClock
) -> None:
    reset = int(clock.now) + 30
    github.fail(
        PULLS, status=200, page=1, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    )

    numbers = _numbers(client)

    assert len(numbers) == 49
    assert clock.sleeps == [31.0]  # until the reset, plus a second for clock skew


def test_primary_rate_limit_403_waits_for_reset_and_retries(
    client: HttpClient, github: FakeGitHub, clock: FakeClock
) -> None:
    reset = int(clock.now) + 120
    github.fail(
        PULLS,
        status=403,
        body='{"message": "API rate limit exceeded"}',
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
    )

    assert len(_numbers(client)) == 49
    assert clock.sleeps == [121.0]


def test_secondary_rate_limit_403_with_retry_after_waits_that_long(
    client: HttpClient, github: FakeGitHub, clock: FakeClock
) -> None:
    github.fail(
        PULLS,
        status=403,
        page=2,
        body='{"message": "You have exceeded a secondary rate limit."}',
        headers={"Retry-After": "60"},
    )

    assert len(_numbers(client)) == 49
    assert clock.sleeps == [60.0]
    assert [r.query.get("page", "1") for r in github.requested(PULLS)] == ["1", "2", "2", "3", "4", "5"]


def test_429_with_retry_after_waits_that_long(
    client: HttpClient, github: FakeGitHub, clock: FakeClock
) -> None:
    github.fail(PULLS, status=429, headers={"Retry-After": "7"})

    assert len(_numbers(client)) == 49
    assert clock.sleeps == [7.0]


def test_server_errors_are_retried_with_exponential_backoff(
    client: HttpClient, github: FakeGitHub, clock: FakeClock
) -> None:
    github.fail(PULLS, status=502, times=1)
    github.fail(PULLS, status=503, times=1)

    assert len(_numbers(client)) == 49
    # base 1 s doubling, jitter 0 takes the lower half: 0.5 s, then 1 s.
    assert clock.sleeps == [0.5, 1.0]


def test_persistent_server_error_names_url_and_status(
    client: HttpClient, github: FakeGitHub, clock: FakeClock
) -> None:
    github.fail(PULLS, status=503, times=99)

    with pytest.raises(RetriesExhaustedError) as raised:
        _numbers(client)

    assert raised.value.status == 503
    assert f"{github.base_url}{PULLS}" in str(raised.value)
    assert "503" in str(raised.value)
    assert len(github.requested(PULLS)) == 4  # RetryPolicy(max_attempts=4)
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_timeout_is_retried(connection: GitHubConnectionConfig, github: FakeGitHub, clock: FakeClock) -> None:
    github.fail(PULLS, status=200, delay=2.0)
    with github_client(
        connection, sleep=clock.sleep, clock=clock.time, jitter=lambda: 0.0, timeout=0.2
    ) as client:
        numbers = _numbers(client)

    assert len(numbers) == 49
    assert clock.sleeps == [0.5]


def test_bad_token_is_a_clear_error(
    connection: GitHubConnectionConfig, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "revoked")
    with github_client(connection) as client, pytest.raises(AuthenticationError) as raised:
        _numbers(client)

    message = str(raised.value)
    assert message.startswith("GitHub rejected the token in $GITHUB_TOKEN (401): check it has repo scope")
    assert "Bad credentials" in message
    assert len(github.requests) == 1  # a bad token is not retried


def test_missing_token_variable_is_named(
    connection: GitHubConnectionConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")

    with pytest.raises(MissingCredentialError, match=r"\$GITHUB_TOKEN is not set"):
        github_client(connection)


def test_unknown_repository_is_not_found_with_its_url(client: HttpClient, github: FakeGitHub) -> None:
    with pytest.raises(NotFoundError, match="repos/nobody/nothing/pulls"):
        list(client.pages("repos/nobody/nothing/pulls", LinkHeaderPaging()))


def test_malformed_page_names_the_url(client: HttpClient, github: FakeGitHub) -> None:
    github.fail(
        PULLS,
        status=200,
        page=2,
        body="<html>Service Unavailable</html>",
        headers={"Content-Type": "text/html"},
    )

    pages = client.pages(f"repos/{ANTS}/pulls", LinkHeaderPaging())
    first = next(pages)
    with pytest.raises(MalformedResponseError) as raised:
        next(pages)

    assert len(first.items) == 10
    assert f"{PULLS}?" in str(raised.value) and "page=2" in str(raised.value)
    assert "not JSON" in str(raised.value) and "text/html" in str(raised.value)


# --- paging strategies other tools use (answers built here: no recording has them) ---------------------


def _answer(url: httpx.URL, body: object) -> tuple[httpx.URL, httpx.Response]:
    return url, httpx.Response(200, json=body, request=httpx.Request("GET", url))


def test_page_number_paging_stops_at_a_short_page() -> None:
    paging = PageNumberPaging(size=2)
    url = paging.first(httpx.URL("https://gitlab.example/api/v4/projects/1/merge_requests"))
    assert url.params["page"] == "1" and url.params["per_page"] == "2"

    url2 = paging.next(*_answer(url, [1, 2]), [1, 2], [1, 2])
    assert url2 is not None and url2.params["page"] == "2"
    assert paging.next(*_answer(url2, [3]), [3], [3]) is None


def test_offset_paging_uses_start_at_and_total() -> None:
    paging = OffsetPaging(size=2)
    url = paging.first(httpx.URL("https://jira.example/rest/api/3/search"))
    body = {"startAt": 0, "maxResults": 2, "total": 3, "issues": [1, 2]}

    following = paging.next(*_answer(url, body), body, [1, 2])
    assert following is not None and following.params["startAt"] == "2"
    last = {"startAt": 2, "maxResults": 2, "total": 3, "issues": [3]}
    assert paging.next(*_answer(following, last), last, [3]) is None


def test_token_paging_sends_the_next_page_token_back() -> None:
    paging = TokenPaging()
    url = paging.first(httpx.URL("https://jira.example/rest/api/3/search/jql"))
    body = {"issues": [1], "nextPageToken": "abc"}

    following = paging.next(*_answer(url, body), body, [1])
    assert following is not None and following.params["nextPageToken"] == "abc"
    assert paging.next(*_answer(following, {"issues": [2]}), {"issues": [2]}, [2]) is None


def test_token_auth_reads_the_named_variable() -> None:
    auth = TokenAuth.from_environment("Jira", "JIRA_TOKEN", environ={"JIRA_TOKEN": " secret "})

    assert auth.header() == "Bearer secret"
    assert "secret" not in repr(auth)


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)

    assert [policy.backoff(n, 0.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.backoff(3, 0.999) < 4.0 <= policy.backoff(4, 0.0) * 2
