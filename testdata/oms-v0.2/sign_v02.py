"""Signs a model with model_signing 0.2.0 exactly as that release's repository script
(`src/sign.py` at tag v0.2.0) does: files serialization with SHA-256, the
`https://model_signing/Digests/v0.1` predicate, and an in-toto DSSE bundle signed with an
elliptic-curve key (`private-key`) or a key plus certificate chain (`pki`). It then checks
the bundle with 0.2.0's own verifier, so every fixture written is one 0.2.0 accepts.

Run by generate.sh inside a throwaway venv that holds model-signing==0.2.0.

    python sign_v02.py MODEL OUT private-key KEY
    python sign_v02.py MODEL OUT pki KEY SIGNING_CERT CHAIN_PEM...
"""

import pathlib
import sys

from cryptography import x509

import model_signing
from model_signing import model
from model_signing.hashing import file
from model_signing.hashing import memory
from model_signing.serialization import serialize_by_file
from model_signing.signature import key
from model_signing.signature import pki
from model_signing.signing import in_toto
from model_signing.signing import in_toto_signature

assert model_signing.__version__ == "0.2.0", model_signing.__version__


def serializer():
    def hasher(path: pathlib.Path) -> file.FileHasher:
        return file.SimpleFileHasher(file=path, content_hasher=memory.SHA256())

    return serialize_by_file.ManifestSerializer(file_hasher_factory=hasher)


def main() -> None:
    model_path, out, method = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
    rest = sys.argv[4:]
    if method == "private-key":
        (key_path,) = rest
        signer = key.ECKeySigner.from_path(private_key_path=key_path)
        verifier = key.ECKeyVerifier.from_path(
            str(pathlib.Path(key_path).with_suffix(".pub"))
        )
    elif method == "pki":
        key_path, cert_path, *chain = rest
        signer = pki.PKISigner.from_path(key_path, cert_path, chain)
        # 0.2.0's PKIVerifier cannot verify anything (it passes the bound method
        # `certificate.public_key` instead of calling it), so the signature is checked with
        # the key verifier it would have reached, over the leaf's key; generate.sh checks
        # the chain with `openssl verify`.
        leaf = x509.load_pem_x509_certificate(pathlib.Path(cert_path).read_bytes())
        verifier = key.ECKeyVerifier(leaf.public_key())
    else:
        raise SystemExit(f"unknown method {method}")

    sig = model.sign(
        model_path=model_path,
        signer=in_toto_signature.IntotoSigner(signer),
        payload_generator=in_toto.DigestsIntotoPayload.from_manifest,
        serializer=serializer(),
        ignore_paths=[out],
    )
    sig.write(out)

    # 0.2.0's own check: signature (its PAE) and the manifest against the files.
    model.verify(
        sig=in_toto_signature.IntotoSignature.read(out),
        verifier=in_toto_signature.IntotoVerifier(verifier),
        model_path=model_path,
        serializer=serializer(),
        ignore_paths=[out],
    )
    print(f"{out}: signed and verified by model_signing {model_signing.__version__}")


if __name__ == "__main__":
    main()
