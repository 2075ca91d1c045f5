"""The facts of a decision (`weightgate verify --json`, `facts`), typed. They come from the
statement and are trustworthy only when the decision allows."""
from __future__ import annotations

from typing import List, Optional, TypedDict


class RegimeFact(TypedDict):
    """What one regime concluded."""

    id: str
    result: str
    threshold: str
    detail: str
    counted_ops: str
    effective_ops: str
    historical: bool
    notes: List[str]


class Facts(TypedDict, total=False):
    """Operation counts are decimal strings (they exceed JSON's exact integers); times are Unix
    seconds."""

    model: Optional[str]
    version: Optional[str]
    root_sha256: Optional[str]
    entity: Optional[str]
    lei: Optional[str]
    country: Optional[str]
    parent_country: Optional[str]
    total_ops: Optional[str]
    effective_ops: Optional[str]
    header_parameters: Optional[int]
    signers: List[str]
    issued_at: Optional[int]
    expires_at: Optional[int]
    regimes: List[RegimeFact]
    lineage: List[str]
    destination: Optional[str]
    now: int
    digest: str
    bytes_hashed: int
    oms_root_sha256: Optional[str]
    oms_signer: Optional[str]
    not_downloaded: List[str]
