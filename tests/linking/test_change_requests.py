"""Change requests (`covered_by`): a deployment is tied to the change record it was made under — explicit
first (correlation id, its release, a change number in its texts), else the time rule (a production
deployment of the change's service finished inside the change's window). On both engines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import typer
from linking_records import (
    change,
    change_request,
    commit,
    deployment,
    item,
    links,
    rid,
    run,
    stream,
    user_link,
    write,
)
from typer.testing import CliRunner

from obeya.cli.trace import link
from obeya.cli.trace import trace as trace_command
from obeya.config.loader import ConfigError, parse_config
from obeya.engine.evidence import DeploymentEvidence, evidence
from obeya.engine.window import Window
from obeya.linking import Coverage, LinkingRules, derive_links, traceability_coverage, update_links
from obeya.linking import trace as trace_chain
from obeya.store import Store, connect

REPO = "pay/api"


def _changes_and_deployments(store: Store) -> None:
    write(
        store,
        # T0 is 2025-03-01 09:00; windows in hours after it
        change_request("CHG0030001", "pay", 2, 4),  # 11:00..13:00
        change_request("CHG0030002", "pay", 3, 6, approval="requested"),  # 12:00..15:00, overlaps
        change_request("CHG0030003", "pay", 0, 10, status="canceled"),  # never by the time rule
        change_request("CHG0030004", "web", None, None, correlation_id="deploy-812"),
        commit(REPO, "a000000", 0, message="deploy under CHG0030001 and CHG0099999 (unknown)"),
        run("deploy-812"),
        run("r9", branch="release/CHG0030002"),
        deployment("d1", "pay", REPO, None, 2.5),  # finishes 11:40: inside CHG0030001 only
        deployment("d2", "pay", REPO, None, 3.5),  # 12:40: inside both, CHG0030002 starts later
        deployment("d3", "pay", REPO, "a000000", 3),  # its commit names CHG0030001: explicit
        deployment("d4", "pay", REPO, None, 3, environment="staging"),  # not production
        deployment("d5", "pay", REPO, None, 8),  # only the canceled change's window
        deployment("d6", "web", "pay/web", None, 20, run="deploy-812"),  # correlation id: its run
        deployment("d7", "pay", REPO, None, 3, result="canceled"),
        deployment("d8", "pay", REPO, None, 2, release="CHG0030001"),  # the change's own deployment
        deployment("d9", "pay", REPO, None, 9, run="r9"),  # its run's branch names CHG0030002
    )


def test_explicit_changes_win_and_the_time_rule_takes_the_change_whose_window_holds_the_finish(
    store: Store,
) -> None:
    _changes_and_deployments(store)
    derive_links(store)
    assert links(store, "covered_by") == {
        (
            rid("d1"),
            rid("CHG0030001"),
            "time rule: production deployment of pay finished 2025-03-01T11:40Z, inside the window of "
            "CHG0030001 (2025-03-01T11:00Z..2025-03-01T13:00Z)",
            0.6,
        ),
        (
            rid("d2"),
            rid("CHG0030002"),
            "time rule: production deployment of pay finished 2025-03-01T12:40Z, inside the window of "
            "CHG0030002 (2025-03-01T12:00Z..2025-03-01T15:00Z)",
            0.6,
        ),
        (rid("d3"), rid("CHG0030001"), "commit message mentions CHG0030001", 0.9),
        (rid("d6"), rid("CHG0030004"), "correlation id of CHG0030004 is pipeline run deploy-812", 1.0),
        (rid("d8"), rid("CHG0030001"), "deployment release_id is CHG0030001", 1.0),
        (rid("d9"), rid("CHG0030002"), "pipeline run branch mentions CHG0030002", 0.9),
    }
    assert derive_links(store).rows_written == 0  # idempotent


def test_correlation_id_may_name_the_deployment_or_its_commit(store: Store) -> None:
    write(
        store,
        change_request("CHG0030005", "web", None, None, correlation_id="d1"),
        change_request("CHG0030006", "web", None, None, correlation_id="c0ffee0aa"),
        deployment("d1", "web", "w/ui", None, 1),
        deployment("d2", "web", "w/ui", "c0ffee0aa", 2),
    )
    derive_links(store)
    assert links(store, "covered_by") == {
        (rid("d1"), rid("CHG0030005"), "correlation id of CHG0030005 is this deployment", 1.0),
        (rid("d2"), rid("CHG0030006"), "correlation id of CHG0030006 is commit c0ffee0", 1.0),
    }


def test_the_change_number_is_a_rule(store: Store) -> None:
    write(
        store,
        change_request("CR-17", None, None, None),
        commit(REPO, "a000000", 0, message="ship it, CR-17"),
        deployment("d1", "pay", REPO, "a000000", 1),
    )
    derive_links(store)
    assert links(store, "covered_by") == set()  # CR-17 is no CHG number
    derive_links(store, LinkingRules(change_number_pattern=r"\b(CR-\d+)\b"))
    assert links(store, "covered_by") == {(rid("d1"), rid("CR-17"), "commit message mentions CR-17", 0.9)}


def test_an_imported_change_of_a_deployment_wins(store: Store) -> None:
    _changes_and_deployments(store)
    write(store, user_link("deployment", rid("d1"), "release", rid("CHG0030002"), "covered_by"))
    derive_links(store)
    assert rid("d1") not in {f for f, *_ in links(store, "covered_by")}
    assert links(store, "covered_by", source="jira") == {
        (rid("d1"), rid("CHG0030002"), "imported from Jira's development panel", 1.0)
    }


def test_incremental_change_requests_equal_a_full_derivation(store: Store) -> None:
    _changes_and_deployments(store)
    update_links(store)
    full = links(store, "covered_by")
    # the change's window moves: d1 leaves it, d2 falls to CHG0030001 only
    write(store, change_request("CHG0030002", "pay", 5, 6, approval="requested"))
    report = update_links(store)
    assert report.mode == "incremental"
    moved = links(store, "covered_by")
    assert (rid("d2"), rid("CHG0030001")) in {(f, t) for f, t, *_ in moved}
    # a commit's message no longer names the change: d3 falls to the time rule (CHG0030001 still)
    write(store, commit(REPO, "a000000", 0, message="deploy"))
    update_links(store)
    d3 = {e for f, _, e, _ in links(store, "covered_by") if f == rid("d3")}
    assert d3 == {
        "time rule: production deployment of pay finished 2025-03-01T12:10Z, inside the window of "
        "CHG0030001 (2025-03-01T11:00Z..2025-03-01T13:00Z)"
    }
    # a run's branch names another change, then the run is deleted
    write(store, run("r9", branch="hotfix/CHG0030001"))
    update_links(store)
    assert (rid("d9"), rid("CHG0030001")) in {(f, t) for f, t, *_ in links(store, "covered_by")}
    store.delete_where("pipeline_run", "id = ?", (rid("r9"),))
    update_links(store)
    after = links(store, "covered_by")
    derive_links(store)
    assert after == links(store, "covered_by")
    assert after != full


def test_coverage_counts_production_deployments_with_an_approved_change(store: Store) -> None:
    _changes_and_deployments(store)
    write(store, stream("payments", ("service", "pay")))
    derive_links(store)
    # successful production deployments: d1 d2 d3 d5 d6 d8 d9 (d4 is staging, d7 canceled); covered by an
    # approved change: d1, d3, d8 (CHG0030001) and d6 (CHG0030004); d2 and d9 by CHG0030002 (requested)
    assert traceability_coverage(store).deployments_with_approved_change == Coverage(4, 7)
    # the payments stream holds the deployments of service pay: d1 d2 d3 d5 d8 d9
    payments = traceability_coverage(store, rid("vs/payments"))
    assert payments.deployments_with_approved_change == Coverage(3, 6)


def _traced_item(store: Store) -> None:
    write(
        store,
        item("PAY-1"),
        commit(REPO, "m000000", 0),
        commit(REPO, "m100000", 2, ["m000000"], message="PAY-1 refunds"),
        change(REPO, 1, 2, merge_sha="m100000", title="PAY-1 refunds"),
        change_request("CHG0030001", "pay", 2, 4),
        deployment("d0", "pay", REPO, "m000000", 1),
        deployment("d1", "pay", REPO, "m100000", 2.5),
    )


def test_trace_shows_the_change_a_deployment_was_made_under(store: Store) -> None:
    _traced_item(store)
    derive_links(store)
    chain = trace_chain(store, "PAY-1")
    assert [s.node.id for s in chain.deployments] == [rid("d1")]
    assert [(s.node.id, s.via, s.link_kind, s.confidence) for s in chain.change_requests] == [
        (rid("CHG0030001"), rid("d1"), "covered_by", 0.6)
    ]
    assert chain.change_requests[0].node.label == "CHG0030001 (released, approved)"
    assert chain.steps_from(rid("d1")) == chain.change_requests


def test_the_deployment_evidence_names_its_change_requests(store: Store) -> None:
    _changes_and_deployments(store)
    derive_links(store)
    page = evidence(store, "dora", "deployment_frequency", Window(datetime(2025, 3, 1), datetime(2025, 3, 3)))
    by_id = {r.id: r for r in page.rows if isinstance(r, DeploymentEvidence)}
    assert by_id[rid("d1")].change_request_ids == [rid("CHG0030001")]
    assert by_id[rid("d6")].change_request_ids == [rid("CHG0030004")]
    assert by_id[rid("d5")].change_request_ids == []


def test_link_and_trace_commands_show_change_requests(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/cli.duckdb"
    with connect(url) as store:
        store.migrate()
        _traced_item(store)
    app = typer.Typer()
    app.command("trace")(trace_command)
    app.command("link")(link)
    runner = CliRunner()
    linked = runner.invoke(app, ["link", "--database-url", url], terminal_width=200)
    assert linked.exit_code == 0, linked.output
    assert "deployment → covered_by → release" in linked.output
    assert "production deployments with an approved change" in linked.output
    traced = runner.invoke(app, ["trace", "PAY-1", "--database-url", url], terminal_width=200)
    assert traced.exit_code == 0, traced.output
    assert "release CHG0030001 (released, approved)" in traced.output
    assert "covered_by (0.60): time rule: production deployment of pay finished" in traced.output


def test_the_change_number_pattern_in_obeya_yaml(tmp_path: Path) -> None:
    config = parse_config("linking:\n  change_number_pattern: '\\b(CR-\\d+)\\b'\n", tmp_path / "obeya.yaml")
    assert config.linking.linking_rules().change_number_pattern == r"\b(CR-\d+)\b"
    assert parse_config("", tmp_path / "obeya.yaml").linking.linking_rules() == LinkingRules()
    with pytest.raises(ConfigError, match=r"change_number_pattern.*exactly one group"):
        parse_config("linking:\n  change_number_pattern: 'CR-\\d+'\n", tmp_path / "obeya.yaml")
