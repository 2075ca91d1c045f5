"""The public API as a user's code types it: checked by `mypy --strict` against the installed
wheel (.ci/python-package.sh), never imported by pytest (no `test_` prefix)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import weightgate
from weightgate import Decision, Facts, RefusedError


def load(repo: str, key: Path) -> Path:
    try:
        return weightgate.verified_snapshot(repo, trust=key, provenance_only=True, cache_dir="/tmp/x")
    except RefusedError as e:
        codes: List[str] = e.codes
        decision: Optional[Decision] = e.decision
        raise SystemExit(f"{codes} {decision}")


def check(folder: Path, key: Path, oms: Path) -> int:
    d: Decision = weightgate.verify(folder, trust=[key], oms_key=oms, complete=True)
    facts: Facts = d.facts
    missing: List[str] = facts["not_downloaded"]
    ops: Optional[str] = facts["total_ops"]
    version: str = weightgate.__version__
    loaded = weightgate.verify_loaded(folder, trust=key)
    return len(missing) + len(ops or "") + len(version) + int(bool(loaded))
