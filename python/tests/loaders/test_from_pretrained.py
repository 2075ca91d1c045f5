"""Loading for real through a `weightgate serve` gate: transformers' `from_pretrained` and
peft's `PeftModel.from_pretrained` with HF_ENDPOINT set to the gate, then what was loaded
checked with `verify_loaded`, `verified_snapshot` and `weightgate verify --hf` on the same
cache. The models are made here: a two-layer Llama with random weights, saved sharded with an
index, and a LoRA adapter on it. Run by .ci/python-package.sh with torch, transformers and peft
(pinned in .ci/requirements.lock)."""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

import weightgate

TESTDATA = Path(os.environ.get("WEIGHTGATE_TESTDATA", Path(__file__).resolve().parents[3] / "testdata"))
LAB_KEY = TESTDATA / "keys/test-lab.key"
LAB_PUB = TESTDATA / "keys/test-lab.pub"

BASE = "lab/tiny-llama"
ADAPTER = "lab/tiny-lora"
REFUSED = "lab/tiny-llama-revoked"
REFUSED_ADAPTER = "lab/tiny-lora-revoked"


def wg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([weightgate.find_binary(), *args], capture_output=True, text=True)


def attest(folder: Path, name: str, params: int, version: str = "1.0.0") -> None:
    """Attests `folder` with the test lab's key: 6ND compute for `params` on 1e9 tokens."""
    total = 6 * params * 10**9
    claims = folder.parent / f"{folder.name}.claims.toml"
    claims.write_text(
        f'[model]\nname = "{name}"\nversion = "{version}"\nopen_weights = true\n\n'
        f'[compute]\nmethod = "6nd"\ntotal = "{total}"\npre_training = "{total}"\n'
        f"post_training = 0\nsynthetic_data = 0\n\n"
        f'[compute.inputs]\nparams_active = {params}\ntokens = "1e9"\n\n'
        f'[entity]\nlegal_name = "Weightgate Test Lab Ltd"\nlei = "549300WGTGATETEST087"\n'
        f'country = "DE"\nparent_country = "DE"\ncontact = "lab@example.invalid"\n'
    )
    r = wg("attest", str(folder), "--key", str(LAB_KEY), "--claims", str(claims), "--quiet")
    assert r.returncode == 0, r.stderr


def payload_sha256(folder: Path) -> str:
    r = wg("inspect", str(folder / "weightgate.att"), "--json")
    assert r.returncode == 0, r.stderr
    return str(json.loads(r.stdout)["payload_sha256"])


class Models:
    """The checkpoints made for the gate, and the state they were saved from."""

    def __init__(self, root: Path) -> None:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import LlamaConfig, LlamaForCausalLM

        config = LlamaConfig(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=32,
        )
        torch.manual_seed(0)
        base = LlamaForCausalLM(config)
        self.base_state = {k: v.clone() for k, v in base.state_dict().items()}
        self.base = root / "tiny-llama"
        base.save_pretrained(self.base, max_shard_size="12KB")
        assert (self.base / "model.safetensors.index.json").is_file()
        self.shards = sorted(p.name for p in self.base.glob("model-*.safetensors"))
        assert len(self.shards) >= 2, self.shards
        # A file loaders never fetch: listed as not downloaded, not a failure.
        (self.base / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny-llama\n")
        base_params = sum(p.numel() for p in base.parameters())
        attest(self.base, "tiny-llama", base_params)

        # The same architecture with other random weights, saved the same way: its shards have
        # the sizes of the real ones (what a swap in the cache would use).
        torch.manual_seed(1)
        self.other = root / "other-llama"
        LlamaForCausalLM(config).save_pretrained(self.other, max_shard_size="12KB")

        lora = get_peft_model(
            base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        )
        self.adapter = root / "tiny-lora"
        lora.save_pretrained(self.adapter)
        self.adapter_state = {k: v.clone() for k, v in lora.state_dict().items() if "lora_" in k}
        adapter_params = sum(p.numel() for n, p in lora.named_parameters() if "lora_" in n)
        attest(self.adapter, "tiny-lora", adapter_params)

        # The same bytes attested again as a release the lab has since withdrawn.
        self.withdrawn_base = root / "withdrawn-llama"
        self.withdrawn_adapter = root / "withdrawn-lora"
        ignore = shutil.ignore_patterns("weightgate.att")
        shutil.copytree(self.base, self.withdrawn_base, ignore=ignore)
        shutil.copytree(self.adapter, self.withdrawn_adapter, ignore=ignore)
        attest(self.withdrawn_base, "tiny-llama", base_params, version="0.9.0")
        attest(self.withdrawn_adapter, "tiny-lora", adapter_params, version="0.9.0")
        self.revoked = [payload_sha256(self.withdrawn_base), payload_sha256(self.withdrawn_adapter)]


class Gate:
    """`weightgate serve` on `store`, its log drained (and kept) so that it never blocks."""

    def __init__(self, store: Path, policy: Path) -> None:
        self.proc = subprocess.Popen(
            [weightgate.find_binary(), "serve", "--store", str(store), "--policy", str(policy),
             "--listen", "127.0.0.1:0"],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        self.endpoint = "http://" + self.proc.stderr.readline().rsplit("http://", 1)[1].strip()
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def reload_policy(self) -> None:
        """SIGHUP, as an operator reloads the policy; returns once the gate says it did."""
        self.proc.send_signal(signal.SIGHUP)
        while True:
            line = self.lines.get(timeout=60)
            assert "NOT reloaded" not in line, line
            if "policy reloaded" in line:
                return

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Models, Path]]:
    """`weightgate serve` holding the base and the adapter, and the same bytes as a withdrawn
    release whose attestations the operator then revokes (every path answers 451). Sets
    HF_ENDPOINT and HF_HOME for the module first, as a user pointing the client at the gate does
    (the models are made with transformers, which imports the hub client)."""
    # The hub client reads its environment once, when first imported: the gate's address has to
    # be set before (huggingface_hub, transformers and peft are imported after this point).
    if "huggingface_hub" in sys.modules:
        pytest.fail("run python/tests/loaders in a pytest process of its own: huggingface_hub was imported before HF_ENDPOINT could be set")
    root = tmp_path_factory.mktemp("loaders")
    trust = f'[policy]\nname = "hub"\n[[trusted_key]]\nname = "lab"\npath = "{LAB_PUB}"\n'
    policy = root / "gate.toml"
    policy.write_text(trust)
    store = root / "store"
    server = Gate(store, policy)
    mp = pytest.MonkeyPatch()
    try:
        hf_home = root / "hf-home"
        mp.setenv("HF_ENDPOINT", server.endpoint)
        mp.setenv("HF_HOME", str(hf_home))
        for name in ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN"]:
            mp.delenv(name, raising=False)
        for flag in ["HF_HUB_DISABLE_XET", "HF_HUB_DISABLE_TELEMETRY", "HF_HUB_DISABLE_IMPLICIT_TOKEN",
                     "HF_HUB_DISABLE_UPDATE_CHECK"]:
            mp.setenv(flag, "1")
        models = Models(root)
        for folder, repo in [
            (models.base, BASE),
            (models.adapter, ADAPTER),
            (models.withdrawn_base, REFUSED),
            (models.withdrawn_adapter, REFUSED_ADAPTER),
        ]:
            r = wg("admit", str(folder), "--repo", repo, "--store", str(store), "--policy", str(policy))
            assert r.returncode == 0, r.stderr
        policy.write_text(trust + f"[revoked]\nattestations = {json.dumps(models.revoked)}\n")
        server.reload_policy()
        yield server.endpoint, models, hf_home
    finally:
        mp.undo()
        server.stop()


def hf_cli(*args: str) -> subprocess.CompletedProcess[str]:
    hf = Path(sysconfig.get_path("scripts")) / "hf"
    return subprocess.run([str(hf), *args], capture_output=True, text=True)


def verify_hf(repo: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`weightgate verify --hf` on the module's cache (HF_HOME), as a user runs it."""
    return wg("verify", "--hf", repo, "--trust", str(LAB_PUB), *extra)


def named_command(stderr: str) -> list[str]:
    """The command between the backticks after `hf download` in verify's message."""
    start = stderr.index("`hf download ") + 1
    return stderr[start : stderr.index("`", start)].split(" ")


def only_snapshot(cache: Path, repo: str) -> Path:
    """The one snapshot of `repo` in `cache` (a hub cache folder)."""
    (snapshot,) = (cache / f"models--{repo.replace('/', '--')}" / "snapshots").iterdir()
    return snapshot


def same_tensors(loaded: dict[str, Any], saved: dict[str, Any]) -> bool:
    import torch

    return loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)


def test_from_pretrained_through_the_gate_then_verify_what_was_loaded(gate: tuple[str, Models, Path]) -> None:
    from transformers import AutoModelForCausalLM

    _, models, hf_home = gate
    model = AutoModelForCausalLM.from_pretrained(BASE)
    assert same_tensors(model.state_dict(), models.base_state)
    snapshot = only_snapshot(hf_home / "hub", BASE)
    commit = snapshot.name
    fetched = sorted(p.name for p in snapshot.iterdir())
    assert "weightgate.att" not in fetched and "README.md" not in fetched, fetched
    assert set(models.shards) <= set(fetched), fetched
    # The same commit again, by its id: nothing new is fetched.
    again = AutoModelForCausalLM.from_pretrained(BASE, revision=commit)
    assert same_tensors(again.state_dict(), models.base_state)

    # The CLI names the command that brings the attestation; run as given, then verify.
    r = verify_hf(BASE)
    assert r.returncode == 2, r.stdout + r.stderr
    command = named_command(r.stderr)
    assert command == ["hf", "download", BASE, "weightgate.att", "--revision", commit], r.stderr
    fetch = hf_cli(*command[1:])
    assert fetch.returncode == 0, fetch.stderr
    r = verify_hf(BASE)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ALLOWED" in r.stdout and "README.md" in r.stdout, r.stdout
    r = verify_hf(BASE, "--complete")
    assert r.returncode == 1 and "subject.missing_file" in r.stdout, r.stdout

    d = weightgate.verify_loaded(model, trust=LAB_PUB)
    assert d.allowed, d.reasons
    assert d.facts["model"] == "tiny-llama" and d.facts["not_downloaded"] == ["README.md"], d.facts


def test_verify_loaded_fetches_only_the_attestation(gate: tuple[str, Models, Path], tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    cache = tmp_path / "cache"
    model = AutoModelForCausalLM.from_pretrained(BASE, cache_dir=cache)
    snapshot = only_snapshot(cache, BASE)
    assert not (snapshot / "weightgate.att").exists()
    d = weightgate.verify_loaded(model, trust=LAB_PUB, cache_dir=cache)
    assert d.allowed, d.reasons
    assert (snapshot / "weightgate.att").is_file()
    assert not (snapshot / "README.md").exists(), "only the attestation is fetched"
    # transformers 5 records no commit: with two in the cache, the model cannot say which.
    (snapshot.parent / ("0" * 40)).mkdir()
    with pytest.raises(weightgate.WeightgateError, match=f"pass '{BASE}@COMMIT'"):
        weightgate.verify_loaded(model, trust=LAB_PUB, cache_dir=cache)
    assert weightgate.verify_loaded(f"{BASE}@{snapshot.name}", trust=LAB_PUB, cache_dir=cache).allowed


def test_peft_adapter_through_the_gate(gate: tuple[str, Models, Path]) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _, models, _ = gate
    base = AutoModelForCausalLM.from_pretrained(BASE)
    model = PeftModel.from_pretrained(base, ADAPTER)
    lora = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert same_tensors(lora, models.adapter_state)
    d = weightgate.verify_loaded(ADAPTER, trust=LAB_PUB)
    assert d.allowed, d.reasons
    assert d.facts["model"] == "tiny-lora"
    r = verify_hf(ADAPTER)
    assert r.returncode == 0, r.stdout + r.stderr
    # A PeftModel comes from two repositories: one decision cannot speak for both.
    with pytest.raises(TypeError, match="verify_loaded"):
        weightgate.verify_loaded(model, trust=LAB_PUB)
    assert weightgate.verify_loaded(BASE, trust=LAB_PUB).allowed
    folder = weightgate.verified_snapshot(ADAPTER, trust=LAB_PUB)
    assert PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), folder) is not None


def test_a_refused_release_surfaces_through_the_loaders(gate: tuple[str, Models, Path]) -> None:
    from huggingface_hub.errors import GatedRepoError
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    with pytest.raises(OSError) as e:
        AutoModelForCausalLM.from_pretrained(REFUSED)
    # docs/gate.md: the reason is the end of the message; its cause is the GatedRepoError.
    assert "attestation.revoked" in str(e.value), e.value
    assert isinstance(e.value.__cause__, GatedRepoError), repr(e.value.__cause__)
    with pytest.raises(weightgate.RefusedError) as refused:
        weightgate.verified_snapshot(REFUSED, trust=LAB_PUB)
    assert refused.value.codes == ["attestation.revoked"], refused.value.codes

    # peft hides the reason (docs/gate.md), and verified_snapshot shows it.
    base = AutoModelForCausalLM.from_pretrained(BASE)
    with pytest.raises(ValueError, match="adapter_config.json"):
        PeftModel.from_pretrained(base, REFUSED_ADAPTER)
    with pytest.raises(weightgate.RefusedError) as refused:
        weightgate.verified_snapshot(REFUSED_ADAPTER, trust=LAB_PUB)
    assert refused.value.codes == ["attestation.revoked"], refused.value.codes


def test_a_shard_swapped_in_the_cache_is_refused(gate: tuple[str, Models, Path], tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    _, models, _ = gate
    cache = tmp_path / "cache"
    model = AutoModelForCausalLM.from_pretrained(BASE, cache_dir=cache)
    assert weightgate.verify_loaded(model, trust=LAB_PUB, cache_dir=cache).allowed
    # Another model's shard of the same size put in place of the cached one.
    snapshot = only_snapshot(cache, BASE)
    shard = (snapshot / models.shards[0]).resolve()
    swapped = (models.other / models.shards[0]).read_bytes()
    assert len(swapped) == shard.stat().st_size
    shard.chmod(0o644)
    shard.write_bytes(swapped)
    # The loader takes it without a word, from the cache ...
    loaded = AutoModelForCausalLM.from_pretrained(BASE, cache_dir=cache, local_files_only=True)
    assert not same_tensors(loaded.state_dict(), models.base_state)
    # ... and verification refuses it.
    d = weightgate.verify_loaded(loaded, trust=LAB_PUB, cache_dir=cache)
    assert not d.allowed and "subject.digest_mismatch" in d.codes, d.codes
    r = wg("verify", str(snapshot), "--trust", str(LAB_PUB))
    assert r.returncode == 1 and "subject.digest_mismatch" in r.stdout, r.stdout + r.stderr
