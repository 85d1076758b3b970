"""DKIM key pairs: generation, and the public key record published in DNS (RFC 6376 section 3.6.1)."""

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# RFC 8301 section 3.2: verifiers must accept 1024 to 4096 bits, and signers
# should use at least 2048.
DEFAULT_KEY_BITS = 2048
# RFC 1035 section 3.3.14: one TXT character-string carries at most 255 bytes.
TXT_STRING_MAX = 255


@dataclass(frozen=True)
class DkimKeyPair:
    """An RSA private key in PEM form and the TXT record value that publishes its public half."""

    private_key_pem: bytes
    public_record: str

    def txt_strings(self) -> list[str]:
        """Cut the record into TXT strings of at most 255 bytes, in order."""
        text = self.public_record
        return [text[start : start + TXT_STRING_MAX] for start in range(0, len(text), TXT_STRING_MAX)]

    def zone_rdata(self) -> str:
        """Write the record as zone-file TXT data: the strings quoted and separated by spaces."""
        return " ".join(f'"{piece}"' for piece in self.txt_strings())


def generate_key_pair(bits: int = DEFAULT_KEY_BITS) -> DkimKeyPair:
    """Generate an RSA key pair for rsa-sha256 DKIM signing."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return DkimKeyPair(private_pem, public_record_for(private_pem))


def public_record_for(private_key_pem: bytes) -> str:
    """Build the ``v=DKIM1; k=rsa; p=...`` record for the public half of a PEM private key."""
    private_key = serialization.load_pem_private_key(private_key_pem, password=None)
    public_der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(public_der).decode("ascii")
