"""Independent reference opener for sealed values, written from the format description in
tests/kit/fixtures/sealed-secrets/MANIFEST.md (at the workspace root) using python `cryptography` (OpenSSL).

Reads JSON lines {"key_pem": ..., "label_b64": ..., "sealed_b64": ...} on stdin and prints one
line per input: the plaintext as base64, or "ERROR <reason>".
"""
import base64
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def open_value(key, label, sealed):
    if len(sealed) < 2:
        raise ValueError("too short")
    rsa_len = int.from_bytes(sealed[:2], "big")
    if len(sealed) < 2 + rsa_len:
        raise ValueError("too short")
    oaep = padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()),
        algorithm=hashes.SHA256(),
        label=label or None,
    )
    session_key = key.decrypt(sealed[2 : 2 + rsa_len], oaep)
    return AESGCM(session_key).decrypt(b"\0" * 12, sealed[2 + rsa_len :], None)


for line in sys.stdin:
    case = json.loads(line)
    key = serialization.load_pem_private_key(case["key_pem"].encode(), password=None)
    try:
        plain = open_value(
            key, base64.b64decode(case["label_b64"]), base64.b64decode(case["sealed_b64"])
        )
        print(base64.b64encode(plain).decode())
    except Exception as error:  # noqa: BLE001 - any failure is reported, never raised
        print("ERROR " + type(error).__name__)
