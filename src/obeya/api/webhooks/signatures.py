"""Checking that a delivery came from the tool: HMAC signatures over the raw body, or a shared token.

Every comparison is constant-time (`hmac.compare_digest`) and works on the bytes as received, before any
JSON parsing: re-serialized JSON would not match the sender's signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def hmac_sha256_hex(secret: bytes, body: bytes) -> str:
    """The lowercase hex HMAC-SHA256 of `body` keyed with `secret`."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def prefixed_signature_matches(
    secret: bytes, body: bytes, header: str | None, prefix: str = "sha256="
) -> bool:
    """Whether `header` is ``prefix + hex HMAC-SHA256 of body`` (GitHub, Jira, Obeya's generic receiver)."""
    if not header or not header.startswith(prefix):
        return False
    given = header[len(prefix) :].strip().lower()
    return hmac.compare_digest(given.encode(), hmac_sha256_hex(secret, body).encode())


def pagerduty_signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether any ``v1=<hex>`` in PagerDuty's comma-separated header matches (several while rotating)."""
    if not header:
        return False
    expected = hmac_sha256_hex(secret, body).encode()
    matched = False
    for part in header.split(","):
        part = part.strip()
        if part.startswith("v1="):
            # No early exit: the time taken does not tell which candidate matched.
            matched |= hmac.compare_digest(part[3:].strip().lower().encode(), expected)
    return matched


def token_matches(secret: bytes, header: str | None) -> bool:
    """Whether GitLab's ``X-Gitlab-Token`` equals the shared secret (GitLab sends the token, not an HMAC)."""
    if not header:
        return False
    return hmac.compare_digest(header.encode(), secret)


def basic_password_matches(secret: bytes, header: str | None) -> bool:
    """Whether ``Authorization: Basic base64(user:password)`` carries the secret as its password.

    Azure DevOps service hooks sign nothing; their *Web Hooks* consumer can send basic authentication,
    and the password is the shared secret (the user name is not checked: it is not secret).
    """
    if not header or header[:6].lower() != "basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    _user, colon, password = decoded.partition(b":")
    return bool(colon) and hmac.compare_digest(password, secret)
