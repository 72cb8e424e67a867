"""The API's routes, described once: :class:`Route` is what the aiohttp router is built
from (:func:`callcenter.web.api.create_api_app`) and what the OpenAPI 3.1 document
served at ``/openapi.json`` is generated from (:func:`openapi_document`), so the two
cannot drift. Pure: no aiohttp here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["API_PREFIX", "ERRORS", "Param", "Route", "openapi_document", "route_table"]

#: Every API route's path starts with it (the version changes when a shape does).
API_PREFIX: Final = "/api/v1"

#: Every error status the API answers, and what it means.
ERRORS: Final[dict[int, str]] = {
    401: "No token, or not a token of this service's users.",
    403: "The user's role does not allow it.",
    404: "Unknown route, agent, queue, action or call.",
    405: "Method not allowed on this route.",
    409: "The agent's state machine refused the action, or the agent or a phone is not in "
         "a state for it (its message).",
    413: "Request body too large.",
    422: "Bad request body or query; 'field' names the part that is wrong.",
    426: "A websocket route asked without a websocket upgrade.",
    503: "Try again: the agent kept changing, or the PBX is not reachable.",
}

#: Errors any authenticated route can answer.
_ALWAYS: Final = (401, 405, 413)


@dataclass(frozen=True, slots=True)
class Param:
    """A path parameter (``{name}`` in the route's path)."""

    name: str
    description: str
    enum: tuple[str, ...] = ()
    #: Only for a query parameter: whether it must be given.
    required: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """One operation: method + path, its handler, and its documentation."""

    method: str
    path: str
    operation_id: str
    summary: str
    #: Who may call it (documentation; the handler asks :mod:`callcenter.web.access`).
    allowed: str
    handler: Callable[..., Any]
    #: Component schema of the 200 answer.
    answer: str
    params: tuple[Param, ...] = ()
    #: Component schema of the JSON body (``None``: none expected).
    body: str | None = None
    #: Error statuses beyond 401, 405 and 413.
    errors: tuple[int, ...] = ()
    #: Served without a token (the document itself).
    public: bool = False
    #: Tag grouping it in the document.
    tag: str = "agents"
    #: Query parameters (``?name=value``).
    query: tuple[Param, ...] = ()
    #: A websocket: answered ``101 Switching Protocols``; *answer* names the schema of
    #: each message the server sends.
    websocket: bool = False
    #: Media type of the 200 answer: JSON (``answer`` is its schema) or a file's
    #: (``audio/*``: a recording), documented as binary.
    media: str = "application/json"


def _operation(route: Route) -> dict[str, Any]:
    answer = {"$ref": f"#/components/schemas/{route.answer}"}
    schema: dict[str, Any] = (
        answer if route.media == "application/json"
        else {"type": "string", "contentMediaType": route.media})
    responses: dict[str, Any] = (
        {"101": {"description": "Switching Protocols: a websocket; each message the server "
                               "sends is a JSON text frame of the schema "
                               f"{route.answer} (x-message).", "x-message": answer}}
        if route.websocket else
        {"200": {"description": "OK", "content": {route.media: {"schema": schema}}}})
    statuses = set(route.errors) | ({405} if route.public else set(_ALWAYS))
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "description": f"Allowed: {route.allowed}.",
        "tags": [route.tag],
        "responses": responses,
    }
    if route.params or route.query:
        operation["parameters"] = [
            {"name": p.name, "in": where, "required": where == "path" or p.required,
             "description": p.description,
             "schema": {"type": "string", **({"enum": list(p.enum)} if p.enum else {})}}
            for where, params in (("path", route.params), ("query", route.query))
            for p in params
        ]
    if route.body is not None:
        operation["requestBody"] = {"required": False, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{route.body}"}}}}
    if route.public:
        operation["security"] = []
    return operation


def openapi_document(routes: Iterable[Route], schemas: Mapping[str, Any], *,
                     version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of *routes*, with *schemas* as its components."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callcenter HTTP API",
            "version": version,
            "description": "Agents' state and actions, queues, calls in progress. Every "
                           "request but this document's needs 'Authorization: Bearer "
                           "<token>' (a user's token from the home's secrets.json; "
                           "'callcenter api token NAME' prints it).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": {**schemas, "OpenApiDocument": {
                "type": "object", "description": "This document."}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def route_table(routes: Iterable[Route]) -> str:
    """The README's route table (Markdown), from the same routes as the document; the
    README test checks the README holds it as generated."""
    lines = ["| method | path | what | who |", "| --- | --- | --- | --- |"]
    for route in routes:
        path = route.path + ("?" + "&".join(f"{p.name}=" for p in route.query)
                             if route.query else "")
        what = route.summary + "".join(f"; `{p.name}`: {', '.join(p.enum)}"
                                       for p in route.params if p.enum)
        lines.append(f"| {route.method} | `{path}` | {what} | {route.allowed} |")
    return "\n".join(lines) + "\n"
