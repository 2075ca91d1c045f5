"""Signs a model with model_signing 0.3.1 as its CLI (`model_signing sign key|certificate`)
does, then checks the bundle with 0.3.1's own verifier (raising on failure: 0.3.1's CLI exits
0 even when signing or verifying fails).

One step differs from the CLI: `signing.Config()` builds a Sigstore signer first, which
fetches Sigstore's TUF metadata over the network before any other signer can be chosen. The
configuration is created without that step; the key or certificate signer, the hashing and
the bundle are 0.3.1's own.

    python sign_v031.py MODEL OUT key PRIVATE PUBLIC
    python sign_v031.py MODEL OUT certificate PRIVATE CERT CHAIN ROOT   (fails in 0.3.1)
"""

import pathlib
import sys

import model_signing
from model_signing import hashing
from model_signing import signing
from model_signing import verifying

assert model_signing.__version__ == "0.3.1", model_signing.__version__


def main() -> None:
    model, out, method, *rest = sys.argv[1:]
    model, out = pathlib.Path(model), pathlib.Path(out)
    config = signing.Config.__new__(signing.Config)
    config._hashing_config = hashing.Config()
    check = verifying.Config()
    if method == "key":
        private, public = rest
        config.use_elliptic_key_signer(private_key=private)
        check.use_elliptic_key_verifier(public_key=public)
    elif method == "certificate":
        private, cert, chain, root = rest
        config.use_certificate_signer(
            private_key=private, signing_certificate=cert, certificate_chain=[chain]
        )
        check.use_certificate_verifier(certificate_chain=[root])
    else:
        raise SystemExit(f"unknown method {method}")
    # As the CLI: the signature and the git paths left out.
    ignored = dict(paths=[out], ignore_git_paths=True)
    config.set_hashing_config(hashing.Config().set_ignored_paths(**ignored)).sign(model, out)
    check.set_hashing_config(hashing.Config().set_ignored_paths(**ignored)).verify(model, out)
    print(f"{out}: signed and verified by model_signing {model_signing.__version__}")


if __name__ == "__main__":
    main()
