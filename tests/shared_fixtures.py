"""Where the shared test data lives: ``../shared/fixtures`` beside the repository (as on CI), or the
folder named by ``OBEYA_SHARED_FIXTURES``. Tests read it from there; it is never copied into the package."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_FIXTURES = Path(
    os.environ.get("OBEYA_SHARED_FIXTURES") or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)
API_RECORDINGS = SHARED_FIXTURES / "api-recordings"

if not API_RECORDINGS.is_dir():
    raise RuntimeError(
        f"the shared test fixtures are not at {SHARED_FIXTURES}: clone the repository beside shared/ "
        "(../shared/fixtures) or set OBEYA_SHARED_FIXTURES to that folder"
    )
