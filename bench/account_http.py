"""A small HTTP account service for the bench: the remote system an HTTP data dip asks.

    python bench/account_http.py --db callcenter.sqlite3 --port N

``GET /accounts/<digits>`` answers the JSON object the ``http`` lookup
(``callcenter.flows.lookup._http``) reads, from the same ``accounts`` table the
database lookup reads, or 404. Both HTTP dips of ``bench/ivr.py`` (FastAGI's
``account_lookup`` with an ``http`` lookup, and Asterisk's own ``CURL()``) ask this
one server, so its cost is the same for both and is not counted on either side.
Listens on 127.0.0.1 only; the key must be digits (anything else is 404, never SQL).
"""

from __future__ import annotations

import argparse
import re
import sqlite3
from pathlib import Path

from aiohttp import web

_QUERY = ("SELECT id, name, language, vip FROM accounts"
          " WHERE account_number = ? AND status = 'active'")


def account_app(database: Path) -> web.Application:
    """The aiohttp application; one read-only SQLite connection, queried inline
    (a point query on an indexed column answers in microseconds)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, check_same_thread=False)

    async def account(request: web.Request) -> web.Response:
        number = request.match_info["number"]
        if not re.fullmatch(r"[0-9]{1,32}", number):
            raise web.HTTPNotFound()
        row = conn.execute(_QUERY, (number,)).fetchone()
        if row is None:
            raise web.HTTPNotFound()
        return web.json_response({"account_id": row[0], "name": row[1],
                                  "language": row[2] or "", "vip": bool(row[3])})

    async def close(_app: web.Application) -> None:
        conn.close()

    app = web.Application()
    app.router.add_get("/accounts/{number}", account)
    app.on_cleanup.append(close)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    web.run_app(account_app(args.db), host="127.0.0.1", port=args.port,
                access_log=None, print=lambda *_: print("account HTTP listening", flush=True))


if __name__ == "__main__":
    main()
