"""CURVE keys as `noised keygen NAME` writes them: NAME.key (Z85 secret) and NAME.pub (Z85 public)."""

from __future__ import annotations

from dataclasses import dataclass
import struct
from pathlib import Path

import zmq
from zmq.utils import z85

__all__ = ["ClientKeys", "read_key_file", "validate_key"]

KEY_LENGTH = 40
Z85_ALPHABET = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")


def validate_key(key: str, what: str = "CURVE key") -> str:
    """Return `key` if it is 40 Z85 characters encoding 32 bytes, else raise ValueError naming `what`."""
    if not isinstance(key, str) or len(key) != KEY_LENGTH:
        length = len(key) if isinstance(key, str) else type(key).__name__
        raise ValueError(f"{what}: expected {KEY_LENGTH} Z85 characters, got {length}")
    for position, character in enumerate(key, 1):
        if character not in Z85_ALPHABET:
            raise ValueError(f"{what}: {character!r} at position {position} is not a Z85 character")
    try:
        z85.decode(key)
    except struct.error:
        raise ValueError(f"{what}: a 5-character group overflows 32 bits") from None
    return key


def read_key_file(path: str | Path) -> str:
    """The single Z85 key of a key file (blank lines and surrounding whitespace ignored)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror})") from None
    keys = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    if len(keys) != 1:
        raise ValueError(f"{path}: expected one Z85 key, found {len(keys)}")
    number, key = keys[0]
    return validate_key(key, f"{path}:{number}")


@dataclass(frozen=True)
class ClientKeys:
    """A client's CURVE keypair (Z85)."""

    public_key: str
    secret_key: str

    def __post_init__(self):
        validate_key(self.public_key, "curve_public_key")
        validate_key(self.secret_key, "curve_secret_key")
        if zmq.curve_public(self.secret_key.encode("ascii")).decode("ascii") != self.public_key:
            raise ValueError("curve_public_key does not belong to curve_secret_key")

    @classmethod
    def from_secret(cls, secret_key: str) -> "ClientKeys":
        """The keypair of a secret key (its public key is derived)."""
        validate_key(secret_key, "curve_secret_key")
        return cls(zmq.curve_public(secret_key.encode("ascii")).decode("ascii"), secret_key)

    @classmethod
    def load(cls, path_prefix: str | Path) -> "ClientKeys":
        """Read PREFIX.key and PREFIX.pub (e.g. `ClientKeys.load("keys/trainer-1")`); they must match."""
        prefix = str(path_prefix)
        secret = read_key_file(prefix + ".key")
        public = read_key_file(prefix + ".pub")
        try:
            return cls(public, secret)
        except ValueError:
            raise ValueError(f"{prefix}.pub is not the public key of {prefix}.key") from None
