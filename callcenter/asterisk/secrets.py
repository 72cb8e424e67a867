"""The home's secrets file, ``secrets.json`` (mode 0600): generated credentials.

It holds the ARI and AMI logins (:class:`callcenter.asterisk.instance.Credentials`,
top-level keys), under ``agent_passwords`` the digest password of every agent's
generated softphone account, under ``api_token`` the bearer token of the HTTP
API's built-in admin (``callcenter serve``; the ``callcenter agents`` commands read it
from here), under ``api_tokens`` the token of every ``api_users`` entry and under
``trunk_passwords`` the password each provider gave for a ``trunks`` entry with ``auth``
(never generated: stored by ``callcenter trunks password`` or ``callcenter carrier run``).
Nothing here is ever logged or printed, except by ``callcenter agents
credentials`` and ``callcenter api token``, whose purpose it is.

Every change is read-modify-write under an exclusive lock (``apply`` and ``run``
may both add an agent), written to a 0600 temporary file and renamed over the
old one, so a reader never sees half a file and the mode is 0600 from the first
byte.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "AGENT_PASSWORDS",
    "API_TOKEN",
    "API_TOKENS",
    "PASSWORD_PATTERN",
    "TRUNK_PASSWORDS",
    "SecretsError",
    "agent_passwords",
    "api_token",
    "ensure_secrets",
    "read_secrets",
    "rotate_api_token",
    "set_trunk_password",
    "stored_agent_password",
    "stored_api_token",
    "stored_user_token",
    "trunk_passwords",
    "user_tokens",
]

#: Key of the agents' passwords (agent name -> password) in the secrets file.
AGENT_PASSWORDS = "agent_passwords"
#: Key of the HTTP API's bearer token in the secrets file.
API_TOKEN = "api_token"
#: Key of the HTTP API users' tokens (``api_users`` name -> token) in the secrets file.
API_TOKENS = "api_tokens"
#: Key of the trunks' digest passwords (``trunks`` name -> the password the provider gave).
TRUNK_PASSWORDS = "trunk_passwords"
#: What a generated password looks like: ``token_urlsafe`` output, which PJSIP's
#: config parser reads as plain text (no ``;``, ``#``, blank or quote).
PASSWORD_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")


class SecretsError(RuntimeError):
    """The secrets file cannot be read or written (never says what it holds)."""


def read_secrets(path: Path) -> dict[str, Any]:
    """The secrets as a dict; empty when the file does not exist yet."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # The message names the file and the problem, never its content.
        raise SecretsError(f"cannot read the secrets file {path}: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise SecretsError(f"the secrets file {path} does not hold a JSON object")
    return data


def _update(path: Path, change: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Apply ``change`` (returns whether it changed anything) under the lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        data = read_secrets(path)
        if change(data) or not path.exists():
            tmp = path.with_name(path.name + ".tmp")
            tmp.unlink(missing_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        os.chmod(path, 0o600)
        return data
    finally:
        os.close(lock_fd)


def ensure_secrets(path: Path, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Add the keys of ``defaults`` that the file lacks; keep every existing value."""

    def change(data: dict[str, Any]) -> bool:
        missing = {k: v for k, v in defaults.items() if k not in data}
        data.update(missing)
        return bool(missing)

    return _update(path, change)


def agent_passwords(path: Path, agents: Iterable[str]) -> dict[str, str]:
    """The softphone password of each agent in ``agents``, generating the missing ones.

    A password, once generated, is kept (across ``apply``, reinstalls and an agent
    leaving the YAML and coming back): a softphone set up once keeps working.
    """
    wanted = sorted(set(agents))
    if not wanted:
        return {}

    def change(data: dict[str, Any]) -> bool:
        stored = data.get(AGENT_PASSWORDS)
        if not isinstance(stored, dict):
            stored = data[AGENT_PASSWORDS] = {}
        changed = False
        for name in wanted:
            if not (isinstance(stored.get(name), str) and PASSWORD_PATTERN.fullmatch(stored[name])):
                stored[name] = secrets.token_urlsafe(18)
                changed = True
        return changed

    data = _update(path, change)
    return {name: data[AGENT_PASSWORDS][name] for name in wanted}


def stored_agent_password(path: Path, agent: str) -> str | None:
    """The agent's password if one was generated (by ``apply``, ``run`` or ``generate``)."""
    stored = read_secrets(path).get(AGENT_PASSWORDS)
    value = stored.get(agent) if isinstance(stored, dict) else None
    return value if isinstance(value, str) else None


def api_token(path: Path) -> str:
    """The HTTP API's bearer token, generated (256 random bits) the first time.

    Kept across restarts, so a running ``callcenter agents`` or script keeps working;
    a token that is not one of ours (edited by hand into something else) is replaced.
    """

    def change(data: dict[str, Any]) -> bool:
        if _is_token(data.get(API_TOKEN)):
            return False
        data[API_TOKEN] = secrets.token_urlsafe(32)
        return True

    return str(_update(path, change)[API_TOKEN])


def stored_api_token(path: Path) -> str | None:
    """The HTTP API's token if a service has generated one; never generates it (a client
    with no token has no service to talk to)."""
    value = read_secrets(path).get(API_TOKEN)
    return value if _is_token(value) else None


def _is_token(value: object) -> bool:
    return isinstance(value, str) and PASSWORD_PATTERN.fullmatch(value) is not None


def user_tokens(path: Path, users: Iterable[str]) -> dict[str, str]:
    """The HTTP API token of each of ``users`` (``api_users`` names), generating the
    missing ones (256 random bits); a token once generated is kept until rotated."""
    wanted = sorted(set(users))
    if not wanted:
        return {}

    def change(data: dict[str, Any]) -> bool:
        stored = data.get(API_TOKENS)
        if not isinstance(stored, dict):
            stored = data[API_TOKENS] = {}
        changed = False
        for name in wanted:
            if not _is_token(stored.get(name)):
                stored[name] = secrets.token_urlsafe(32)
                changed = True
        return changed

    data = _update(path, change)
    return {name: data[API_TOKENS][name] for name in wanted}


def stored_user_token(path: Path, user: str) -> str | None:
    """The token of API user *user* if one was generated; never generates it."""
    stored = read_secrets(path).get(API_TOKENS)
    value = stored.get(user) if isinstance(stored, dict) else None
    return value if _is_token(value) else None


def rotate_api_token(path: Path, user: str | None) -> str:
    """A new token for API user *user* (``None``: the built-in admin's ``api_token``);
    the old one stops working as soon as a running service sees the file change."""
    token = secrets.token_urlsafe(32)

    def change(data: dict[str, Any]) -> bool:
        if user is None:
            data[API_TOKEN] = token
            return True
        stored = data.get(API_TOKENS)
        if not isinstance(stored, dict):
            stored = data[API_TOKENS] = {}
        stored[user] = token
        return True

    _update(path, change)
    return token


def trunk_passwords(path: Path, trunks: Iterable[str]) -> dict[str, str]:
    """The stored password of each of ``trunks`` that has one (never generated: the
    provider chooses it); the generator names the missing ones."""
    stored = read_secrets(path).get(TRUNK_PASSWORDS)
    if not isinstance(stored, dict):
        return {}
    return {name: stored[name] for name in sorted(set(trunks))
            if isinstance(stored.get(name), str)}


def set_trunk_password(path: Path, trunk: str, password: str) -> None:
    """Store (or replace) the password of trunk ``trunk``."""

    def change(data: dict[str, Any]) -> bool:
        stored = data.get(TRUNK_PASSWORDS)
        if not isinstance(stored, dict):
            stored = data[TRUNK_PASSWORDS] = {}
        if stored.get(trunk) == password:
            return False
        stored[trunk] = password
        return True

    _update(path, change)
