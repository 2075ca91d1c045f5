#!/usr/bin/env bash
# The Python package as users get it: builds the wheel with maturin (release profile, the binary
# inside, as python/README.md has users build it), installs it into a fresh git-ignored venv with
# pytest, huggingface_hub and mypy (versions pinned by .ci/requirements.lock), and runs python/tests
# against the installed copy, then python/tests/loaders with .ci/venv's torch stack in reach. Run
# by .ci/run after the cargo tests; needs .ci/venv (maturin, torch, transformers, peft).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$(dirname "${WEIGHTGATE_PYTHON:-$PWD/.ci/venv/bin/python}")"

rm -rf .ci/wheel-dist .ci/wheel-venv
(cd python && "$tools/maturin" build --release --quiet --out ../.ci/wheel-dist)
python3 -m venv .ci/wheel-venv
.ci/wheel-venv/bin/pip install -q --disable-pip-version-check -c .ci/requirements.lock \
  .ci/wheel-dist/weightgate-*.whl pytest huggingface_hub mypy
# From a folder outside the source tree, so `import weightgate` can only find the installed copy.
cd .ci/wheel-venv
export PYTHONDONTWRITEBYTECODE=1
env -u WEIGHTGATE_BINARY WEIGHTGATE_TESTDATA="$OLDPWD/testdata" \
  bin/python -m pytest -q -p no:cacheprovider "$OLDPWD/python/tests" --ignore="$OLDPWD/python/tests/loaders"
# The API as users' code types it, against the installed package (its py.typed).
bin/python -m mypy --strict --cache-dir=/dev/null "$OLDPWD/python/tests/typed_usage.py"
# The loader tests load models with torch, transformers and peft, installed once in .ci/venv
# (pinned by the lock; torch brings GBs of CUDA wheels): this venv sees them through a .pth
# file, added after the tests above ran without them. Its own packages still come first.
"$tools/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))' \
  >"$(bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/ci-venv-loaders.pth"
env -u WEIGHTGATE_BINARY WEIGHTGATE_TESTDATA="$OLDPWD/testdata" \
  bin/python -m pytest -q -p no:cacheprovider "$OLDPWD/python/tests/loaders"
