"""The web side of ``callcenter serve``: the HTTP API (agents' state and actions, queues,
calls in progress, users with roles, its OpenAPI document), the server that runs it,
where it announces itself in the home, and the client the ``callcenter agents``
commands use.

- :mod:`~callcenter.web.views`: pure: JSON shapes and their schemas, request bodies into
  agent events.
- :mod:`~callcenter.web.access`: pure: users and what each role may do.
- :mod:`~callcenter.web.auth`: which user a token is (the secrets file, re-read on change).
- :mod:`~callcenter.web.openapi`: pure: the route description and the OpenAPI document.
- :mod:`~callcenter.web.context`: what the handlers share (app keys, user, errors, the
  lookup of a path's agent or queue).
- :mod:`~callcenter.web.api`: the aiohttp application (auth, routes, errors).
- :mod:`~callcenter.web.stream`: ``GET /api/v1/events``, the live event stream (websocket).
- :mod:`~callcenter.web.supervise`: listen, whisper, barge on an agent's call.
- :mod:`~callcenter.web.statistics`: ``/api/v1/stats`` and a queue's real-time figures.
- :mod:`~callcenter.web.server`: run it on ``settings.http_api``.
- :mod:`~callcenter.web.endpoint`: ``api.json`` in the home (URL and pid).
- :mod:`~callcenter.web.client`: the CLI's client.
"""

from callcenter.web.access import ApiUser, users_from_config
from callcenter.web.api import ROUTES, AgentChangeHook, HangUpHook, create_api_app
from callcenter.web.auth import TokenBook
from callcenter.web.server import ApiServer, connect_url

__all__ = ["ROUTES", "AgentChangeHook", "ApiServer", "ApiUser", "HangUpHook", "TokenBook",
           "connect_url", "create_api_app", "users_from_config"]
