"""Options shared by several commands."""

from typing import Annotated

import typer

DatabaseURL = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Store to use; default $OBEYA_DATABASE_URL, else duckdb:///./obeya.duckdb.",
        show_default=False,
    ),
]
