"""The installed wheel: its binary and its Python API, against the repository's testdata and a
real `hf download` from the wheel's own `weightgate serve`. Run by .ci/python-package.sh in a
fresh venv holding only the wheel, pytest and huggingface_hub (pinned)."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import weightgate
from weightgate import Decision, WeightgateError

TESTDATA = Path(os.environ.get("WEIGHTGATE_TESTDATA", Path(__file__).resolve().parents[2] / "testdata"))
LAB_KEY = TESTDATA / "keys/test-lab.key"
LAB_PUB = TESTDATA / "keys/test-lab.pub"
OTHER_PUB = TESTDATA / "keys/test-other.pub"


def wg(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([weightgate.find_binary(), *args], capture_output=True, text=True, **kw)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """The tiny two-shard checkpoint, attested by the test lab."""
    ck = tmp_path / "tiny"
    shutil.copytree(TESTDATA / "checkpoints/tiny", ck)
    r = wg("attest", str(ck), "--key", str(LAB_KEY), "--claims", str(TESTDATA / "claims/tiny-below.toml"), "--quiet")
    assert r.returncode == 0, r.stderr
    return ck


def flip_last_byte(path: Path) -> None:
    real = path.resolve()
    real.chmod(0o644)
    data = bytearray(real.read_bytes())
    data[-1] ^= 1
    real.write_bytes(bytes(data))


def test_the_binary_is_the_one_the_wheel_installed() -> None:
    assert Path(sys.prefix) in Path(weightgate.__file__).parents, weightgate.__file__
    binary = Path(weightgate.find_binary())
    assert binary.parent == Path(sysconfig.get_path("scripts")), binary
    assert Path(sys.prefix) in binary.parents
    r = subprocess.run([sys.executable, "-m", "weightgate", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("weightgate "), r
    r = subprocess.run([sys.executable, "-m", "weightgate", "verify"], capture_output=True, text=True)
    assert r.returncode == 2 and "--policy" in r.stderr and "--trust" in r.stderr


def test_hash_matches_hashlib_and_the_root_rule(tiny: Path) -> None:
    result = weightgate.hash(tiny)
    names = sorted(p.name for p in tiny.iterdir() if p.name != "weightgate.att")
    assert [f.path for f in result.files] == names
    raw = b""
    for f in result.files:
        data = (tiny / f.path).read_bytes()
        assert f.size == len(data)
        assert f.sha256 == hashlib.sha256(data).hexdigest()
        raw += hashlib.sha256(data).digest()
    assert result.root_sha256 == hashlib.sha256(raw).hexdigest()
    fast = weightgate.hash(tiny, blake3_only=True)
    assert fast.root_sha256 is None and all(f.sha256 is None for f in fast.files)
    assert [f.blake3 for f in fast.files] == [f.blake3 for f in result.files]
    with pytest.raises(WeightgateError, match="No such file"):
        weightgate.hash(tiny / "missing")


def test_verify_allows_then_denies_a_flipped_byte(tiny: Path) -> None:
    d = weightgate.verify(tiny, trust=LAB_PUB)
    assert isinstance(d, Decision) and d.allowed and bool(d), d
    assert d.codes == [] and d.facts["model"] == "tiny-lm"
    assert [c.name for c in d.checks][0] == "envelope"
    assert all(c.outcome in ("pass", "skip") for c in d.checks)
    d = weightgate.verify(tiny, trust=[OTHER_PUB])
    assert not d.allowed and "signature.untrusted_key" in d.codes
    flip_last_byte(tiny / "model-00002-of-00002.safetensors")
    d = weightgate.verify(str(tiny), trust=[LAB_PUB], destination="DE")
    assert not d and "subject.digest_mismatch" in d.codes, d.codes
    assert d.facts["destination"] == "DE"


def test_verify_with_a_policy_and_input_errors(tiny: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[policy]\nname = "py"\n[[trusted_key]]\nname = "lab"\npath = "{LAB_PUB}"\n')
    assert weightgate.verify(tiny, policy=policy).allowed
    with pytest.raises(ValueError, match="policy= .* or trust="):
        weightgate.verify(tiny)
    with pytest.raises(ValueError, match="not both"):
        weightgate.verify(tiny, policy=policy, trust=LAB_PUB)
    # A destination that is not an ISO 3166-1 alpha-2 code is judged as unknown, not an error:
    # only regimes, licences or embargoes that depend on it refuse it (none do here).
    unknown = weightgate.verify(tiny, trust=LAB_PUB, destination="Germany")
    assert unknown.allowed and unknown.facts["destination"] == "unknown"
    with pytest.raises(WeightgateError, match="nowhere: no such file or folder") as e:
        weightgate.verify(tiny / "nowhere", trust=LAB_PUB)
    assert e.value.returncode == 2
    (tiny / "weightgate.att").unlink()
    with pytest.raises(WeightgateError, match="--attestation"):
        weightgate.verify(tiny, trust=LAB_PUB)


@pytest.fixture
def gate(tiny: Path, tmp_path: Path):
    """`weightgate serve` (the wheel's binary) serving the tiny model as lab/tiny."""
    policy = tmp_path / "gate.toml"
    policy.write_text(f'[policy]\nname = "hub"\n[[trusted_key]]\nname = "lab"\npath = "{LAB_PUB}"\n')
    store = tmp_path / "store"
    r = wg("admit", str(tiny), "--repo", "lab/tiny", "--store", str(store), "--policy", str(policy))
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen(
        [weightgate.find_binary(), "serve", "--store", str(store), "--policy", str(policy), "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stderr.readline()
        yield "http://" + first.rsplit("http://", 1)[1].strip()
    finally:
        proc.kill()
        proc.wait()


def hf_download(endpoint: str, hf_home: Path) -> None:
    env = dict(os.environ)
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(hf_home),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_IMPLICIT_TOKEN="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
    )
    env.pop("HF_HUB_CACHE", None)
    hf = Path(sysconfig.get_path("scripts")) / "hf"
    r = subprocess.run([str(hf), "download", "lab/tiny"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr


def test_verify_snapshot_after_hf_download(gate: str, tiny: Path, tmp_path: Path, monkeypatch) -> None:
    hf_home = tmp_path / "hf-home"
    hf_download(gate, hf_home)
    cache = hf_home / "hub"
    repo = cache / "models--lab--tiny"
    commit = (repo / "refs/main").read_text()
    snapshot = repo / "snapshots" / commit
    att = tiny / "weightgate.att"

    # The gate serves weightgate.att with the revision: the snapshot verifies with the key alone.
    assert (snapshot / "weightgate.att").read_bytes() == att.read_bytes()
    d = weightgate.verify_snapshot("lab/tiny", cache_dir=cache, trust=LAB_PUB)
    assert d.allowed, d.reasons
    assert weightgate.verify(snapshot, trust=LAB_PUB).allowed
    assert weightgate.verify_snapshot("lab/tiny", commit[:7], cache_dir=cache, trust=LAB_PUB).allowed
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    assert weightgate.verify_snapshot("lab/tiny", "main", trust=LAB_PUB).allowed
    with pytest.raises(WeightgateError, match="revision `v2` is not in the cache"):
        weightgate.verify_snapshot("lab/tiny", "v2", trust=LAB_PUB)
    with pytest.raises(WeightgateError, match="lab/other is not in the Hugging Face cache"):
        weightgate.verify_snapshot("lab/other", trust=LAB_PUB)
    with pytest.raises(ValueError):
        weightgate.verify_snapshot("lab/tiny@main", trust=LAB_PUB)

    flip_last_byte(snapshot / "config.json")
    d = weightgate.verify_snapshot("lab/tiny", trust=LAB_PUB)
    assert not d.allowed and "subject.digest_mismatch" in d.codes, d.codes


def fetch_as_a_loader(endpoint: str, cache: Path) -> Path:
    """What from_pretrained downloads for the tiny sharded model: config, index, every shard;
    never the attestation. Returns the snapshot folder."""
    from huggingface_hub import hf_hub_download

    for name in ["config.json", "model.safetensors.index.json",
                 "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]:
        path = Path(hf_hub_download("lab/tiny", name, endpoint=endpoint, cache_dir=cache))
    return path.parent


def test_verified_snapshot_and_verify_loaded(gate: str, tiny: Path, tmp_path: Path) -> None:
    folder = weightgate.verified_snapshot("lab/tiny", trust=LAB_PUB, endpoint=gate, cache_dir=tmp_path / "c1")
    assert (folder / "config.json").read_bytes() == (tiny / "config.json").read_bytes()
    assert (folder / "weightgate.att").is_file()

    cache = tmp_path / "c2"
    snapshot = fetch_as_a_loader(gate, cache)
    assert not (snapshot / "weightgate.att").exists()
    d = weightgate.verify_loaded("lab/tiny", trust=LAB_PUB, endpoint=gate, cache_dir=cache)
    assert d.allowed, d.reasons
    assert (snapshot / "weightgate.att").is_file(), "only the attestation was fetched"
    assert d.facts["not_downloaded"] == [] and d.facts["model"] == "tiny-lm"
    assert weightgate.verify_loaded(snapshot, trust=LAB_PUB).allowed
    p = weightgate.verify_loaded(snapshot, trust=LAB_PUB, provenance_only=True)
    assert p.allowed and not p.facts["regimes"]
    assert any(c.name == "regimes" and "no regime was judged" in c.detail for c in p.checks), p.checks

    flip_last_byte(snapshot / "model-00001-of-00002.safetensors")
    d = weightgate.verify_loaded("lab/tiny", trust=LAB_PUB, cache_dir=cache)
    assert not d and "subject.digest_mismatch" in d.codes, d.codes
    with pytest.raises(weightgate.RefusedError) as e:
        weightgate.verified_snapshot(
            "lab/tiny", trust=LAB_PUB, endpoint=gate, cache_dir=cache, local_files_only=True
        )
    assert "subject.digest_mismatch" in e.value.codes and e.value.decision is not None


def test_a_refused_repo_raises_with_the_gates_reasons(tiny: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    admit_policy = tmp_path / "admit.toml"
    admit_policy.write_text(f'[policy]\nname = "hub"\n[[trusted_key]]\nname = "lab"\npath = "{LAB_PUB}"\n')
    r = wg("admit", str(tiny), "--repo", "lab/tiny", "--store", str(store), "--policy", str(admit_policy))
    assert r.returncode == 0, r.stderr
    # The gate now trusts another key only: the lab's release is refused on every path.
    serve_policy = tmp_path / "serve.toml"
    serve_policy.write_text(f'[policy]\nname = "hub"\n[[trusted_key]]\nname = "other"\npath = "{OTHER_PUB}"\n')
    proc = subprocess.Popen(
        [weightgate.find_binary(), "serve", "--store", str(store), "--policy", str(serve_policy),
         "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        endpoint = "http://" + proc.stderr.readline().rsplit("http://", 1)[1].strip()
        with pytest.raises(weightgate.RefusedError) as e:
            weightgate.verified_snapshot("lab/tiny", trust=LAB_PUB, endpoint=endpoint, cache_dir=tmp_path / "c")
    finally:
        proc.kill()
        proc.wait()
    assert e.value.codes and all(c.startswith("signature.") for c in e.value.codes), e.value.codes
    assert "refused" in str(e.value)


def test_version_is_the_binarys() -> None:
    r = wg("--version")
    installed = Path(sys.prefix) in Path(weightgate.__file__).parents
    if installed or "WEIGHTGATE_BINARY" not in os.environ:
        assert r.stdout.split()[1] == weightgate.__version__, (r.stdout, weightgate.__version__)
    else:  # a source checkout against a built binary: no package metadata
        assert weightgate.__version__ == "0+unknown"
