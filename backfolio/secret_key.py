"""The embedded default's ``SECRET_KEY``: random, made once, kept in ``var/``, owner-only.

Sessions, CSRF tokens and JWTs are signed with ``SECRET_KEY``; a key that anyone can read in the
source lets anyone mint a token for any user. With no ``DJANGO_SECRET_KEY`` in the environment
the settings call ``embedded_secret_key``: the first start writes a random key to a file only the
service's user may read (0600) and every later start — and every process of the same checkout —
reads the same key back, so sessions and tokens survive restarts. Imported by the settings, so it
uses no Django.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

SECRET_KEY_BYTES = 50  # token_urlsafe(50): 67 characters, ~400 bits
OWNER_ONLY = 0o600


class SecretKeyFileError(RuntimeError):
    """The key file exists but cannot serve as a key (empty or unreadable)."""


def embedded_secret_key(path: Path) -> str:
    """The key kept in ``path``, created (mode 0600) on the first call."""
    path = Path(path)
    if not path.exists():
        _create(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # A key others can read is no secret: take the permissions back before using it.
        os.chmod(path, OWNER_ONLY)
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise SecretKeyFileError(
            f"{path} is empty: delete it to have a new key generated, or set DJANGO_SECRET_KEY."
        )
    return key


def _create(path: Path) -> None:
    """Write a new key atomically: processes starting together all end up with one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(SECRET_KEY_BYTES) + "\n")
        # link() fails if another process created the key first; that key then wins.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
