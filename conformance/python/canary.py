"""The secrets canary for the SDK suite: every secret and token that crosses the official SDK's
HTTP client (API keys, provider tokens, client secrets, webhook signing secrets, widget tokens)
is remembered, and at the end of the session the server's database file, its WAL and shared
memory, and the server's log must hold none of them in plaintext."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2

SECRET_FIELDS = {"access_token", "refresh_token", "client_secret", "secret", "api_key", "token"}
MIN_LEN = 10

KNOWN: set[str] = set()


def remember(value: str) -> None:
    if isinstance(value, str) and len(value) >= MIN_LEN:
        KNOWN.add(value)


def remember_fields(value) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if k in SECRET_FIELDS and isinstance(v, str):
                remember(v)
            else:
                remember_fields(v)
    elif isinstance(value, list):
        for item in value:
            remember_fields(item)


def _body(raw: bytes):
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _watch(response: httpx2.Response) -> None:
    response.read()
    remember_fields(_body(response.request.content or b""))
    remember_fields(_body(response.content or b""))


def http_client() -> httpx2.Client:
    """The HTTP client the SDK sends through, watched by the canary."""
    return httpx2.Client(event_hooks={"response": [_watch]})


def check(database_file: Path, log_file: Path) -> None:
    hay = b""
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{database_file}{suffix}")
        if path.exists():
            hay += path.read_bytes()
    log = log_file.read_bytes() if log_file.exists() else b""
    found = [
        f"{secret[:6]}… in the {place}"
        for secret in sorted(KNOWN)
        for place, data in (("database", hay), ("log", log))
        if secret.encode() in data
    ]
    assert not found, f"secrets canary: {len(found)} of {len(KNOWN)} secrets in plaintext: {', '.join(found)}"
    assert KNOWN, "the canary saw no secret at all: it is not watching"
