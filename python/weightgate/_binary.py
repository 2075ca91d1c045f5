"""Locating the `weightgate` binary the wheel installed into the environment's scripts folder."""
from __future__ import annotations

import os
import shutil
import sys
import sysconfig

_NAME = "weightgate" + (".exe" if sys.platform == "win32" else "")


def find_binary() -> str:
    """The path of the `weightgate` binary: `WEIGHTGATE_BINARY` if set, else the one installed
    with this package (the scripts folder of the install scheme in use, as ruff and uv look for
    theirs), else the first on PATH."""
    override = os.environ.get("WEIGHTGATE_BINARY")
    if override:
        return override
    candidates = [sysconfig.get_path("scripts")]
    user_scheme = sysconfig.get_preferred_scheme("user") if hasattr(sysconfig, "get_preferred_scheme") else None
    if user_scheme:
        candidates.append(sysconfig.get_path("scripts", scheme=user_scheme))
    for folder in candidates:
        path = os.path.join(folder, _NAME)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which(_NAME)
    if found:
        return found
    raise FileNotFoundError(
        f"the weightgate binary is not installed beside this package (looked in {', '.join(candidates)} and PATH); "
        "reinstall the wheel built from the weightgate repository (python/README.md)"
    )
