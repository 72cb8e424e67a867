"""The API's tokens: which user a presented bearer token is.

Each user's token is in the home's ``secrets.json`` (0600): the built-in admin's under
``api_token`` (the one ``callcenter agents`` uses), every ``api_users`` entry's under
``api_tokens``. :class:`TokenBook` re-reads the file when it changes, so ``callcenter api
token NAME --rotate`` takes effect on a running service at once (the old token is
refused from the next request). Tokens are compared in constant time, against every
user's token (no early exit tells which one nearly matched), and never logged.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from callcenter.asterisk.secrets import (
    API_TOKEN,
    API_TOKENS,
    SecretsError,
    api_token,
    read_secrets,
    rotate_api_token,
    stored_user_token,
    user_tokens,
)
from callcenter.config.models import BUILTIN_ADMIN
from callcenter.web.access import ApiUser

__all__ = ["TokenBook", "UnknownUser", "user_token"]

log = logging.getLogger(__name__)

_Stamp = tuple[int, int, int] | None


class TokenBook:
    """Users and their tokens; *load* gives user name -> token (read again whenever
    *stamp* changes)."""

    def __init__(self, users: Mapping[str, ApiUser], load: Callable[[], Mapping[str, str]],
                 stamp: Callable[[], _Stamp] = lambda: None) -> None:
        self._users = dict(users)
        self._load = load
        self._stamp = stamp
        self._seen: _Stamp = None
        self._tokens: list[tuple[bytes, ApiUser]] = []
        self._refresh(force=True)

    @classmethod
    def fixed(cls, users: Mapping[str, ApiUser], tokens: Mapping[str, str]) -> TokenBook:
        """Tokens that never change (tests, embedding)."""
        frozen = dict(tokens)
        return cls(users, lambda: frozen)

    @classmethod
    def from_secrets(cls, path: Path, users: Mapping[str, ApiUser]) -> TokenBook:
        """The tokens of *users* in the secrets file *path*, generating the missing ones.

        Raises:
            callcenter.asterisk.secrets.SecretsError: the file cannot be read or written.
        """
        api_token(path)
        user_tokens(path, [name for name in users if name != BUILTIN_ADMIN])

        def load() -> dict[str, str]:
            data = read_secrets(path)
            stored = data.get(API_TOKENS)
            tokens = dict(stored) if isinstance(stored, dict) else {}
            tokens[BUILTIN_ADMIN] = data.get(API_TOKEN)
            return {k: v for k, v in tokens.items() if isinstance(v, str) and v}

        def stamp() -> _Stamp:
            try:
                st = os.stat(path)
            except OSError:
                return None
            return (st.st_ino, st.st_mtime_ns, st.st_size)

        return cls(users, load, stamp)

    def _refresh(self, *, force: bool = False) -> None:
        stamp = self._stamp()
        if not force and stamp == self._seen:
            return
        tokens = self._load()
        self._seen = stamp
        self._tokens = [(tokens[name].encode("utf-8"), user)
                        for name, user in self._users.items() if name in tokens]

    def user_for(self, presented: bytes) -> ApiUser | None:
        """The user whose token *presented* is, or ``None``.

        A secrets file that became unreadable keeps the tokens last read (the service
        keeps answering; ``callcenter api token`` reports the file's problem).
        """
        try:
            self._refresh()
        except (SecretsError, OSError) as exc:
            log.warning("HTTP API: keeping the tokens last read: %s", exc)
        found: ApiUser | None = None
        for token, user in self._tokens:
            if hmac.compare_digest(presented, token) and found is None:
                found = user
        return found


class UnknownUser(LookupError):
    """No API user of that name (its message says where the users are)."""


def user_token(path: Path, name: str, *, users: Iterable[str] | None,
               rotate: bool = False) -> str:
    """API user *name*'s token (``callcenter api token``), generated if it has none yet,
    or a new one with *rotate*. *users*: the config's ``api_users`` names (``None``: no
    config given, so only a user whose token is already stored is known).

    Raises:
        UnknownUser: *name* is not a user.
        callcenter.asterisk.secrets.SecretsError: the file cannot be read or written.
    """
    if name == BUILTIN_ADMIN:
        return rotate_api_token(path, None) if rotate else api_token(path)
    if users is not None:
        known = sorted(set(users))
        if name not in known:
            raise UnknownUser(f"no API user {name!r} in the config (api_users: "
                              f"{', '.join([BUILTIN_ADMIN, *known])})")
    elif stored_user_token(path, name) is None:
        raise UnknownUser(f"no token for API user {name!r} in {path}: pass --config "
                          "CONFIG_DIR (the config with its api_users entry), or start "
                          "the service, which generates every user's token")
    if rotate:
        return rotate_api_token(path, name)
    return user_tokens(path, [name])[name]
