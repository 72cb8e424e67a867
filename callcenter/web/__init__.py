"""The web side of ``callcenter serve``: the HTTP API (agent state and actions, waiting
calls), the server that runs it, where it announces itself in the home, and the client
the ``callcenter agents`` commands use.

- :mod:`~callcenter.web.views`: pure: JSON shapes, request bodies into agent events.
- :mod:`~callcenter.web.api`: the aiohttp application (token auth, routes, errors).
- :mod:`~callcenter.web.server`: run it on ``settings.http_api``.
- :mod:`~callcenter.web.endpoint`: ``api.json`` in the home (URL and pid).
- :mod:`~callcenter.web.client`: the CLI's client.
"""

from callcenter.web.api import AgentChangeHook, create_api_app
from callcenter.web.server import ApiServer, connect_url

__all__ = ["AgentChangeHook", "ApiServer", "connect_url", "create_api_app"]
