"""The real huggingface_hub client on the cache, for cli/tests/hf_loaded.rs.

  fetch REPO FILE...   downloads these files as a loader does (hf_hub_download, one by one; a
                       file the repository lacks is probed as transformers probes
                       model.safetensors and must come back "not found"), prints the snapshot
  lookup REPO REV      prints where try_to_load_from_cache and
                       snapshot_download(local_files_only=True) resolve REV, as a JSON list
                       ("-" when the client finds nothing)
HF_ENDPOINT / HF_HOME / HF_HUB_CACHE come from the environment.
"""
import json
import os
import sys

from huggingface_hub import hf_hub_download, snapshot_download, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

mode, repo = sys.argv[1], sys.argv[2]
if mode == "fetch":
    snapshot = None
    for name in sys.argv[3:]:
        if name.startswith("?"):
            try:
                hf_hub_download(repo, name[1:])
            except EntryNotFoundError:
                continue
            raise SystemExit(f"{name[1:]} was expected to be absent")
        snapshot = os.path.dirname(hf_hub_download(repo, name))
    print(snapshot)
elif mode == "lookup":
    revision = sys.argv[3]
    found = try_to_load_from_cache(repo, "config.json", revision=revision)
    out = [os.path.dirname(found) if isinstance(found, str) else "-"]
    try:
        out.append(snapshot_download(repo, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, OSError):
        out.append("-")
    print(json.dumps(out))
else:
    raise SystemExit(f"unknown mode {mode}")
