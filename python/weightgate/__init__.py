"""weightgate from Python: a thin typed layer over the bundled binary's `--json` output.

Each call runs `weightgate` once (see docs/decisions.md for why not an extension module). The
binary's exit codes map to results: 0 allowed, 1 denied (both return a `Decision`), 2 an input
error (raised as `WeightgateError` with the binary's message).
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping, Optional, Sequence, Union

from weightgate._binary import find_binary

__all__ = [
    "Check",
    "Decision",
    "FileDigest",
    "HashResult",
    "Reason",
    "WeightgateError",
    "find_binary",
    "hash",
    "verify",
    "verify_snapshot",
]

PathLike = Union[str, "os.PathLike[str]"]


class WeightgateError(Exception):
    """An input error (exit code 2): unreadable or malformed input, a bad flag, no such model in
    the cache. `message` is what the binary printed."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.message = message
        self.returncode = returncode


@dataclass(frozen=True)
class Reason:
    """Why a decision denies: a stable reason code (docs/verify.md) and a message."""

    code: str
    message: str


@dataclass(frozen=True)
class Check:
    """One check of `weightgate verify`, in the order they ran."""

    name: str
    outcome: Literal["pass", "fail", "skip"]
    detail: str


@dataclass(frozen=True)
class Decision:
    """What `weightgate verify` decided. `facts` come from the statement and are trustworthy
    only when `allowed` is true."""

    allowed: bool
    reasons: list[Reason]
    checks: list[Check]
    facts: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def codes(self) -> list[str]:
        """The reason codes, e.g. `["subject.digest_mismatch"]`."""
        return [r.code for r in self.reasons]

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Decision":
        return cls(
            allowed=bool(doc["allowed"]),
            reasons=[Reason(code=r["code"], message=r["message"]) for r in doc["reasons"]],
            checks=[Check(name=c["name"], outcome=c["outcome"], detail=c["detail"]) for c in doc["checks"]],
            facts=dict(doc["facts"]),
            raw=dict(doc),
        )


@dataclass(frozen=True)
class FileDigest:
    path: str
    size: int
    sha256: Optional[str]
    blake3: str


@dataclass(frozen=True)
class HashResult:
    """Per-file digests and the OpenSSF model-signing root digest (SHA-256 over the files'
    SHA-256 in path-component order)."""

    files: list[FileDigest]
    root_sha256: Optional[str]
    raw: dict[str, Any] = field(repr=False)


def _run(args: Sequence[str], env: Optional[Mapping[str, str]] = None) -> subprocess.CompletedProcess[str]:
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    return subprocess.run(
        [find_binary(), *args],
        capture_output=True,
        text=True,
        env=full_env,
        check=False,
    )


def _raise_for_input_error(proc: subprocess.CompletedProcess[str]) -> None:
    message = proc.stderr.strip().removeprefix("weightgate: error: ")
    raise WeightgateError(message or f"weightgate exited with {proc.returncode}", proc.returncode)


def _trust_args(
    policy: Optional[PathLike],
    trust: Union[PathLike, Iterable[PathLike], None],
) -> list[str]:
    if trust is None:
        keys: list[PathLike] = []
    elif isinstance(trust, (str, os.PathLike)):
        keys = [trust]
    else:
        keys = list(trust)
    if policy is None and not keys:
        raise ValueError("give policy= (a policy file) or trust= (one or more Ed25519 public keys)")
    if policy is not None and keys:
        raise ValueError("give policy= or trust=, not both (a policy file lists its trusted keys)")
    if policy is not None:
        return ["--policy", os.fspath(policy)]
    out: list[str] = []
    for k in keys:
        out += ["--trust", os.fspath(k)]
    return out


def _verify(target: list[str], options: list[str], env: Optional[Mapping[str, str]] = None) -> Decision:
    proc = _run(["verify", *target, *options, "--json", "--quiet"], env=env)
    if proc.returncode in (0, 1):
        decision = Decision.from_json(json.loads(proc.stdout))
        if decision.allowed != (proc.returncode == 0):
            raise WeightgateError("the exit code and the JSON decision disagree", proc.returncode)
        return decision
    _raise_for_input_error(proc)
    raise AssertionError("unreachable")


def _options(
    policy: Optional[PathLike],
    trust: Union[PathLike, Iterable[PathLike], None],
    destination: Optional[str],
    attestation: Optional[PathLike],
    full: bool,
    now: Optional[str],
    grants: Iterable[PathLike],
    base_attestation: Optional[PathLike],
) -> list[str]:
    out = _trust_args(policy, trust)
    if destination is not None:
        out += ["--destination", destination]
    if attestation is not None:
        out += ["--attestation", os.fspath(attestation)]
    if full:
        out.append("--full")
    if now is not None:
        out += ["--now", now]
    for g in grants:
        out += ["--grant", os.fspath(g)]
    if base_attestation is not None:
        out += ["--base-attestation", os.fspath(base_attestation)]
    return out


def verify(
    path: PathLike,
    *,
    policy: Optional[PathLike] = None,
    trust: Union[PathLike, Iterable[PathLike], None] = None,
    destination: Optional[str] = None,
    attestation: Optional[PathLike] = None,
    full: bool = False,
    now: Optional[str] = None,
    grants: Iterable[PathLike] = (),
    base_attestation: Optional[PathLike] = None,
) -> Decision:
    """Verifies a checkpoint folder or file (a Hugging Face cache snapshot or `--local-dir`
    download as it is) against its attestation (default `PATH/weightgate.att`) and a policy file
    or trusted keys. Returns the decision, allowed or denied; raises `WeightgateError` on input
    errors and `ValueError` when neither or both of `policy` and `trust` are given."""
    options = _options(policy, trust, destination, attestation, full, now, grants, base_attestation)
    return _verify([os.fspath(path)], options)


def verify_snapshot(
    repo_id: str,
    revision: Optional[str] = None,
    *,
    policy: Optional[PathLike] = None,
    trust: Union[PathLike, Iterable[PathLike], None] = None,
    destination: Optional[str] = None,
    cache_dir: Optional[PathLike] = None,
    attestation: Optional[PathLike] = None,
    full: bool = False,
    now: Optional[str] = None,
    grants: Iterable[PathLike] = (),
    base_attestation: Optional[PathLike] = None,
) -> Decision:
    """Verifies the snapshot of `repo_id` at `revision` (a branch, tag or commit id; default
    `main`) in the local Hugging Face cache: `cache_dir` if given (as in `snapshot_download`),
    else where huggingface_hub looks (`HF_HUB_CACHE`, `HF_HOME/hub`, `~/.cache/huggingface/hub`)."""
    if "@" in repo_id:
        raise ValueError("pass the revision as revision=, not inside repo_id")
    spec = repo_id if revision is None else f"{repo_id}@{revision}"
    options = _options(policy, trust, destination, attestation, full, now, grants, base_attestation)
    env = None if cache_dir is None else {"HF_HUB_CACHE": os.fspath(cache_dir)}
    return _verify(["--hf", spec], options, env=env)


def hash(
    path: PathLike,
    *,
    blake3_only: bool = False,
    ignore: Iterable[str] = (),
    allow_symlinks: bool = False,
) -> HashResult:
    """SHA-256 and BLAKE3 of every file of a checkpoint and the model root digest (`weightgate
    hash --json`). With `blake3_only`, SHA-256 and the root are not computed."""
    args = ["hash", "--json"]
    if blake3_only:
        args.append("--blake3-only")
    if allow_symlinks:
        args.append("--allow-symlinks")
    for p in ignore:
        args += ["--ignore", p]
    proc = _run([*args, os.fspath(path)])
    if proc.returncode != 0:
        _raise_for_input_error(proc)
    doc = json.loads(proc.stdout)
    files = [
        FileDigest(path=f["path"], size=f["size"], sha256=f.get("sha256"), blake3=f["blake3"])
        for f in doc["files"]
    ]
    return HashResult(files=files, root_sha256=doc.get("root_sha256"), raw=doc)
