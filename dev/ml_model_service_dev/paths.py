"""Where the repository's folders are, for the tools that read or run them."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"  # bootstrap, requirement and constraint files
TESTS = REPO / "ml_model_service" / "test"
EXPORTERS = Path(__file__).resolve().parent / "exporters"  # scripts the exporters' own environments run
OUT = REPO / "out"
