"""Token and key helpers of the emulator's auth: only token hashes are stored, secrets compare in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from airflow_puddle.emulator.rows import User


def hash_token(token: str) -> str:
    """What the store keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(given: str, expected: str) -> bool:
    """``given == expected``, in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


def new_token() -> str:
    """A fresh random token (32 bytes, URL-safe text)."""
    return secrets.token_urlsafe(32)


def user_of_key(api_key_id: str, user_name: str) -> User:
    """The one user an API key id logs in as; its id derives from the key id."""
    key_hash = hashlib.sha256(api_key_id.encode()).hexdigest()[:12]
    return User(id=f"user-{key_hash}", name=user_name, email=f"{user_name}@puddle.local")
