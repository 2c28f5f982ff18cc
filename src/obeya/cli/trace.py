"""`obeya trace` and `obeya link`: follow one work item through delivery, and derive the links."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from obeya.cli.options import DatabaseURL
from obeya.config import load_config
from obeya.linking import (
    LinkingError,
    TraceChain,
    TraceStep,
    derive_links,
    traceability_coverage,
    update_links,
)
from obeya.linking import trace as trace_chain
from obeya.settings import open_store


def _step_label(step: TraceStep) -> str:
    when = f" [dim]{step.node.at:%Y-%m-%d %H:%M}[/dim]" if step.node.at else ""
    source = "" if step.source == "obeya" else f", {step.source}"
    return (
        f"[bold]{step.node.kind.replace('_', ' ')}[/bold] {step.node.label}{when}\n"
        f"[dim]{step.link_kind} ({step.confidence:.2f}{source}): {step.evidence}[/dim]"
    )


def chain_tree(chain: TraceChain) -> Tree:
    """The chain as a tree: the item, its parent and children, then each change with what it led to."""
    tree = Tree(f"[bold]{chain.item.label}[/bold] [dim]{chain.item.id}[/dim]")
    if chain.parent:
        tree.add(_step_label(chain.parent))
    for child in chain.children:
        tree.add(_step_label(child))

    def grow(branch: Tree, record_id: str, path: frozenset[str]) -> None:
        for step in chain.steps_from(record_id):
            if step.node.id not in path:  # a record reached two ways is shown twice, never in a loop
                grow(branch.add(_step_label(step)), step.node.id, path | {step.node.id})

    grow(tree, chain.item.id, frozenset({chain.item.id}))
    if not (chain.changes or chain.commits or chain.parent or chain.children):
        tree.add("[yellow]no links: run `obeya link` to derive them[/yellow]")
    return tree


def trace(
    key: Annotated[str, typer.Argument(help="Work item key (e.g. PAY-123) or id.")],
    database_url: DatabaseURL = None,
) -> None:
    """Show the chain of one work item: parent and children, commits, changes, pipeline runs,
    deployments and the incidents they caused, each link with its evidence and confidence.

    Examples:

        obeya trace PAY-123

        obeya trace PAY-123 --database-url postgresql://obeya@db:5432/obeya
    """
    with open_store(database_url) as store:
        try:
            chain = trace_chain(store, key)
        except LinkingError as error:
            typer.echo(f"obeya: {error}", err=True)
            raise typer.Exit(1) from error
    Console().print(chain_tree(chain))


def link(
    database_url: DatabaseURL = None,
    full: Annotated[
        bool,
        typer.Option("--full", help="Derive every link from scratch, not only what the new data changes."),
    ] = False,
) -> None:
    """Derive the trace links (work items ↔ commits ↔ changes ↔ runs ↔ deployments ↔ incidents) and the
    changes each deployment shipped, then show how much of the delivery is traced.

    Incremental: only the links the data written since the last derivation can change are derived again
    (the same links a full derivation gives); --full derives all of them. `obeya sync`, `obeya replay`,
    the scheduled sync and the webhooks already keep links up to date. Safe to run again: unchanged links
    are left alone, links that no longer hold are removed, and links a user imported are never touched.

    Examples:

        obeya link

        obeya link --full

        OBEYA_DATABASE_URL=duckdb:///./other.duckdb obeya link
    """
    with open_store(database_url) as store:
        rules = load_config().linking.linking_rules()
        report = derive_links(store, rules) if full else update_links(store, rules)
        coverage = traceability_coverage(store)
    console = Console()
    console.print(report.summary())
    links = Table("link", "rows", "written", "removed", title=f"Links derived in {report.seconds:.1f} s")
    for name, count in report.links.items():
        links.add_row(
            name.replace(">", " → ", 1).replace(">", " → "),
            f"{count.total:,}",
            f"{count.written:,}",
            f"{count.removed:,}",
        )
    shipped = report.mode == "full" or "deployment>ships>change" in report.links
    if shipped:
        dc = report.deployment_changes
        links.add_row("deployment_changes", f"{dc.total:,}", f"{dc.written:,}", f"{dc.removed:,}")
    if report.links:
        console.print(links)
    if shipped:
        console.print(
            f"deployments linked by git graph: {report.deployments_by_graph:,}, by time window: "
            f"{report.deployments_by_time_window:,}, first of their service/environment (no base): "
            f"{report.deployments_without_base:,}, without repository: {report.deployments_without_repo:,}"
        )
    shares = Table("coverage", "traced", "share", title="Traceability")
    for label, cov in coverage.as_rows():
        share = "no data" if cov.share is None else f"{cov.share:.0%}"
        shares.add_row(label, f"{cov.numerator:,} of {cov.denominator:,}", share)
    console.print(shares)
