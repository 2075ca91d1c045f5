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
from importlib.metadata import PackageNotFoundError, version as _package_version
from pathlib import Path
from typing import Any, Iterable, List, Literal, Mapping, Optional, Sequence, Union, cast

from weightgate._binary import find_binary
from weightgate._facts import Facts, RegimeFact

__all__ = [
    "Check",
    "Decision",
    "Facts",
    "FileDigest",
    "HashResult",
    "Reason",
    "RefusedError",
    "RegimeFact",
    "WeightgateError",
    "__version__",
    "find_binary",
    "hash",
    "verified_snapshot",
    "verify",
    "verify_loaded",
    "verify_snapshot",
]

try:
    __version__: str = _package_version("weightgate")
except PackageNotFoundError:  # a source checkout, not an installed wheel
    __version__ = "0+unknown"

PathLike = Union[str, "os.PathLike[str]"]


class WeightgateError(Exception):
    """An input error (exit code 2): unreadable or malformed input, a bad flag, no such model in
    the cache. `message` is what the binary printed."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.message = message
        self.returncode = returncode


class RefusedError(WeightgateError):
    """A model refused: by the local verification (`decision` holds every check) or by a
    `weightgate serve` gate while downloading (HTTP 451; `decision` is the gate's when it sent
    one). `codes` are the stable reason codes (docs/verify.md), e.g. `["subject.digest_mismatch"]`."""

    def __init__(self, message: str, codes: List[str], decision: Optional["Decision"] = None) -> None:
        super().__init__(message, 1)
        self.codes = codes
        self.decision = decision


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
    facts: Facts
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
            # The binary's JSON, as typed by `Facts` (docs/verify.md): no copy field by field.
            facts=cast(Facts, dict(doc["facts"])),
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
    provenance_only: bool = False,
    complete: bool = False,
    oms_key: Union[PathLike, Iterable[PathLike], None] = None,
) -> list[str]:
    out = _trust_args(policy, trust)
    if provenance_only:
        out.append("--provenance-only")
    if complete:
        out.append("--complete")
    if oms_key is not None:
        keys = [oms_key] if isinstance(oms_key, (str, os.PathLike)) else list(oms_key)
        for k in keys:
            out += ["--oms-key", os.fspath(k)]
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
    provenance_only: bool = False,
    complete: bool = False,
    oms_key: Union[PathLike, Iterable[PathLike], None] = None,
) -> Decision:
    """Verifies a checkpoint folder or file (a Hugging Face cache snapshot or `--local-dir`
    download as it is) against its attestation (default `PATH/weightgate.att`) and a policy file
    or trusted keys. Returns the decision, allowed or denied; raises `WeightgateError` on input
    errors and `ValueError` when neither or both of `policy` and `trust` are given.

    A Hugging Face download is checked for what it holds: attested files never downloaded are
    listed in `facts["not_downloaded"]` unless `complete=True`; the weights a model loads must be
    there. `provenance_only=True` judges no regime (signatures, revocation, the bytes, model.sig,
    compute consistency, lineage). `oms_key` checks `model.sig` with these ECDSA public keys."""
    options = _options(
        policy, trust, destination, attestation, full, now, grants, base_attestation,
        provenance_only, complete, oms_key,
    )
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
    provenance_only: bool = False,
    complete: bool = False,
    oms_key: Union[PathLike, Iterable[PathLike], None] = None,
) -> Decision:
    """Verifies the snapshot of `repo_id` at `revision` (a branch, tag or commit id; default
    `main`) in the local Hugging Face cache: `cache_dir` if given (as in `snapshot_download`),
    else where huggingface_hub looks (`HF_HUB_CACHE`, `HF_HOME/hub`, `~/.cache/huggingface/hub`)."""
    if "@" in repo_id:
        raise ValueError("pass the revision as revision=, not inside repo_id")
    spec = repo_id if revision is None else f"{repo_id}@{revision}"
    options = _options(
        policy, trust, destination, attestation, full, now, grants, base_attestation,
        provenance_only, complete, oms_key,
    )
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


_HUB_ENV = (
    "huggingface_hub is needed for this call (pip install huggingface_hub): it downloads from the Hub "
    "or a `weightgate serve` gate"
)


def _refused(decision: Decision, what: str) -> RefusedError:
    reasons = "; ".join(f"{r.code}: {r.message}" for r in decision.reasons)
    return RefusedError(f"{what} refused: {reasons}", decision.codes, decision)


def _gate_refusal(error: Exception) -> Optional[RefusedError]:
    """The reasons of a gate's HTTP 451 (`GatedRepoError`): from the decision in its JSON body,
    else from the `weightgate refused this release: CODE: message; ...` header message."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if response is None or status != 451:
        return None
    try:
        body = response.json()
    except Exception:  # not JSON: fall back to the header
        body = None
    if isinstance(body, dict) and isinstance(body.get("decision"), dict):
        decision = Decision.from_json(body["decision"])
        return _refused(decision, "the gate")
    message = str(response.headers.get("x-error-message", ""))
    codes = [part.split(":", 1)[0].strip() for part in message.split(": ", 1)[-1].split("; ") if ":" in part]
    return RefusedError(message or str(error), codes)


def verified_snapshot(
    repo_id: str,
    revision: Optional[str] = None,
    *,
    trust: Union[PathLike, Iterable[PathLike], None] = None,
    policy: Optional[PathLike] = None,
    destination: Optional[str] = None,
    provenance_only: bool = False,
    oms_key: Union[PathLike, Iterable[PathLike], None] = None,
    **hub_kwargs: Any,
) -> Path:
    """Downloads the snapshot of `repo_id` with huggingface_hub's `snapshot_download` (every
    file: the attestation and `model.sig` included; `hub_kwargs` go to it, e.g. `cache_dir`,
    `token`, `local_dir`), verifies it, and returns the folder to hand to `from_pretrained` only
    when allowed. Raises `RefusedError` with the reason codes when the local check denies or a
    `weightgate serve` gate refuses the download (HTTP 451)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import GatedRepoError
    except ImportError as e:  # pragma: no cover - huggingface_hub is installed with the tests
        raise ImportError(_HUB_ENV) from e
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, **hub_kwargs))
    except GatedRepoError as e:
        refused = _gate_refusal(e)
        if refused is None:
            raise
        raise refused from e
    decision = verify(
        folder,
        trust=trust,
        policy=policy,
        destination=destination,
        provenance_only=provenance_only,
        complete=True,
        oms_key=oms_key,
    )
    if not decision.allowed:
        raise _refused(decision, f"{repo_id} ({folder})")
    return folder


def _loaded_source(model_or_path: Any) -> tuple[Optional[Path], Optional[str], Optional[str], bool]:
    """(folder, repo id, revision, whether it is a loaded model) of what a model was loaded
    from: a path, an `ORG/NAME[@REV]` string, or a transformers model or config
    (`config._name_or_path`, and `config._commit_hash` where transformers still sets it)."""
    if isinstance(model_or_path, os.PathLike) or (
        isinstance(model_or_path, str) and os.path.exists(model_or_path)
    ):
        return Path(os.fspath(model_or_path)), None, None, False
    if isinstance(model_or_path, str):
        repo, _, rev = model_or_path.partition("@")
        return None, repo, rev or None, False
    if getattr(model_or_path, "peft_config", None):
        # A base model with adapters loaded from other repositories: one decision would vouch
        # for the base alone.
        raise TypeError(
            "a model with PEFT adapters was loaded from several repositories: call verify_loaded "
            "once per repository: the base model's ('ORG/NAME') and each adapter's ('ORG/ADAPTER'), "
            "or their folders"
        )
    config = getattr(model_or_path, "config", model_or_path)
    name = getattr(config, "_name_or_path", None) or getattr(config, "name_or_path", None)
    if not isinstance(name, str) or not name:
        raise TypeError(
            "verify_loaded takes a path, an 'ORG/NAME[@REV]' string or a transformers model/config "
            f"(with config._name_or_path); got {type(model_or_path).__name__}"
        )
    if os.path.exists(name):
        return Path(name), None, None, True
    # transformers 4 recorded the commit it loaded; 5 does not (it resolves the revision once
    # per load and keeps it nowhere).
    commit = getattr(config, "_commit_hash", None)
    return None, name, commit if isinstance(commit, str) else None, True


def _only_cached_commit(repo_id: str, cache_dir: Optional[PathLike]) -> Path:
    """The one snapshot of `repo_id` in the cache: a model that does not say which commit it was
    loaded from was loaded from it. Several are ambiguous (main may have moved since the load,
    or another revision was loaded): an error asking for the commit."""
    from huggingface_hub import constants

    cache = Path(os.fspath(cache_dir)) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    snapshots = cache / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    commits = sorted(p.name for p in snapshots.iterdir() if p.is_dir()) if snapshots.is_dir() else []
    if not commits:
        raise WeightgateError(f"{repo_id} is not in the Hugging Face cache (load or download it first)", 2)
    if len(commits) > 1:
        raise WeightgateError(
            f"{repo_id} has {len(commits)} commits in the Hugging Face cache ({', '.join(commits)}) and the "
            f"model does not say which it was loaded from: pass '{repo_id}@COMMIT'",
            2,
        )
    return snapshots / commits[0]


def verify_loaded(
    model_or_path: Any,
    *,
    trust: Union[PathLike, Iterable[PathLike], None] = None,
    policy: Optional[PathLike] = None,
    destination: Optional[str] = None,
    provenance_only: bool = False,
    oms_key: Union[PathLike, Iterable[PathLike], None] = None,
    fetch_attestation: bool = True,
    **hub_kwargs: Any,
) -> Decision:
    """Verifies what a model was loaded from in the Hugging Face cache: a snapshot folder, an
    `ORG/NAME[@REV]` id (without `@REV`, the commit the cache's `main` names), or a transformers
    model (its `config._name_or_path`; transformers 5 records no commit, so the repository must
    have one snapshot in the cache, else pass `ORG/NAME@COMMIT`; a model with PEFT adapters
    raises `TypeError`: verify the base model's and each adapter's repository). Loaders fetch only the files they load, never the attestation: when
    it is absent and `fetch_attestation` is true, only `weightgate.att` of that very commit is
    fetched (`hf_hub_download`; `hub_kwargs` go to it, e.g. `cache_dir`, `token`). The snapshot
    is checked for what it holds (files never downloaded are listed in
    `facts["not_downloaded"]`). Returns the decision; `bool(decision)` is whether it allows."""
    folder, repo_id, revision, loaded = _loaded_source(model_or_path)
    if folder is None and loaded and revision is None:
        assert repo_id is not None
        try:
            folder = _only_cached_commit(repo_id, hub_kwargs.get("cache_dir"))
        except ImportError as e:  # pragma: no cover
            raise ImportError(_HUB_ENV) from e
        revision = folder.name
    elif folder is None:
        assert repo_id is not None
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError as e:  # pragma: no cover
            raise ImportError(_HUB_ENV) from e
        cache_dir = hub_kwargs.get("cache_dir")
        found: Any = None
        # A file every model (or adapter) of its kind has, to find the snapshot by.
        for probe in ["config.json", "adapter_config.json", "model.safetensors"]:
            found = try_to_load_from_cache(repo_id, probe, cache_dir=cache_dir, revision=revision)
            if isinstance(found, str):
                break
        if not isinstance(found, str):
            raise WeightgateError(
                f"{repo_id}{'@' + revision if revision else ''} is not in the Hugging Face cache "
                "(load or download it first)",
                2,
            )
        folder = Path(found).parent
        revision = folder.name
    elif folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        # A cache snapshot given by path: its repository and commit are in its path.
        repo_id = folder.parent.parent.name[len("models--"):].replace("--", "/")
        revision = folder.name
        hub_kwargs.setdefault("cache_dir", str(folder.parents[2]))
    attestation = folder / "weightgate.att"
    if not attestation.exists() and fetch_attestation and repo_id is not None:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError

        try:
            hf_hub_download(repo_id, "weightgate.att", revision=revision, **hub_kwargs)
        except GatedRepoError as e:
            refused = _gate_refusal(e)
            if refused is None:
                raise
            raise refused from e
        except LocalEntryNotFoundError:
            pass  # the hub is not reachable: verify says which command brings it
    return verify(
        folder,
        trust=trust,
        policy=policy,
        destination=destination,
        provenance_only=provenance_only,
        oms_key=oms_key,
    )
