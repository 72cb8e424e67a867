"""The queue router alone in a process of its own, for tests that kill it (``kill -9``).

``python -m tests.integration.router_process HOME CONFIG_DIR DB_URL NODE`` runs
:class:`ari_apps.queue_router.QueueRouter` against the Asterisk instance in HOME and logs
its INFO lines to stdout, line by line: the test reads them as events ("ready",
"answered", "ended"). ``callcenter serve`` runs the same router with the other services.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from ari_apps.queue_router import QueueRouter
from callcenter.asterisk.ari import ARIClient
from callcenter.asterisk.instance import AsteriskInstance
from callcenter.config.loader import load_config
from callcenter.storage import make_engine, make_sessionmaker


async def main(home: str, config_dir: str, db_url: str, node: str) -> None:
    instance = AsteriskInstance(Path(home))
    config = load_config(config_dir).config
    creds = instance.credentials
    engine = make_engine(db_url, sqlite_immediate=True)
    try:
        async with ARIClient(instance.ari_url, username=creds.ari_user,
                             password=creds.ari_password,
                             app=(config.settings.queue_app, config.settings.agent_app)) as ari:
            await QueueRouter(config, ari, make_sessionmaker(engine), node=node).run()
    finally:
        await engine.dispose()


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="%(name)s %(levelname)s %(message)s")
    asyncio.run(main(*sys.argv[1:5]))
