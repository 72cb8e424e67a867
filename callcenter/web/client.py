"""The HTTP API from the command line (``callcenter agents list|login|...``).

Synchronous (a CLI command makes one request), standard library only, proxies
ignored (the API is on this machine; an ``http_proxy`` in the environment must not
see the token). Every failure is an :class:`ApiClientError` whose message a user
can act on.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from callcenter.asterisk.secrets import SecretsError, stored_api_token
from callcenter.web.endpoint import read_endpoint

__all__ = ["NOT_RUNNING_HINT", "ApiClient", "ApiClientError", "ApiRefused", "ServiceNotRunning"]

NOT_RUNNING_HINT = "is `callcenter run` or `callcenter serve` running?"


class ApiClientError(Exception):
    """The API could not be asked, or said no."""


class ServiceNotRunning(ApiClientError):
    """No service answers for this home."""


class ApiRefused(ApiClientError):
    """The API answered with an error (``status``; the message is the API's own)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class ApiClient:
    """Requests to one running service's API."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @classmethod
    def for_home(cls, home: Path, *, timeout: float = 10.0) -> ApiClient:
        """The client of the service running in *home* (``api.json`` + the token).

        Raises:
            ServiceNotRunning: no service has announced its API there, or it has died.
            ApiClientError: the secrets file cannot be read.
        """
        endpoint = read_endpoint(home)
        if endpoint is None or not endpoint.alive:
            raise ServiceNotRunning(f"no callcenter service is running in {home}: "
                                    f"{NOT_RUNNING_HINT}")
        try:
            token = stored_api_token(home / "secrets.json")
        except SecretsError as exc:
            raise ApiClientError(str(exc)) from None
        if token is None:
            raise ServiceNotRunning(f"no API token in {home / 'secrets.json'}: "
                                    f"{NOT_RUNNING_HINT}")
        return cls(endpoint.url, token, timeout=timeout)

    def agents(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/api/v1/agents")["agents"])

    def agent(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/agents/{_segment(name)}")

    def act(self, name: str, action: str, *, reason: str | None = None) -> dict[str, Any]:
        """``POST /api/v1/agents/{name}/{action}``; the agent's new state."""
        body = {"reason": reason} if reason is not None else None
        return self._request("POST", f"/api/v1/agents/{_segment(name)}/{_segment(action)}", body)

    def waiting_calls(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/api/v1/calls/waiting")["calls"])

    def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self._token}", "Accept": "application/json",
            **({"Content-Type": "application/json"} if data is not None else {}),
        })
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return _decode(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                message = _decode(exc.read()).get("error") or f"HTTP {exc.code}"
            raise ApiRefused(exc.code, str(message)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceNotRunning(f"the callcenter API at {self.url} does not answer "
                                    f"({reason}): {NOT_RUNNING_HINT}") from None


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
