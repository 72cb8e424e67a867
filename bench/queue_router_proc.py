"""(helper) The ARI router contender of ``bench/queue.py``, in its own process.

    python bench/queue_router_proc.py --home H --config DIR

Runs ``ari_apps.queue_router.QueueRouter`` as ``callcenter serve`` will (its own process,
uvloop when installed, a migrated SQLite database in the home) against the bench's
Asterisk in ``H``, with the callcenter config in ``DIR`` (every agent a
``device: PJSIP/<endpoint>`` agent). Once the router is registered and has resynced,
every agent of the config is logged in the way the API and feature codes do it
(``router.store.apply(name, Login(), now)`` then ``router.agent_changed(name)``), and
``queue router ready: N agents logged in`` is printed. SIGTERM or SIGINT stops it.

Its own process so that its CPU is counted apart (``/proc/<pid>``) and it competes with
the driver for nothing but the cores, as Asterisk's app_queue does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, where bench/queue.py would shadow the
# standard library's ``queue`` (aiosqlite and asyncio import it): drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: import the repo's packages
    sys.path.insert(0, str(REPO))

#: Printed when the router takes calls; the driver waits for it.
READY = "queue router ready"
MISSING = "the ARI router contender needs ari_apps.queue_router"


async def serve(home: Path, config_dir: Path, *, immediate: bool = True) -> None:
    """Router up, agents logged in, then run until cancelled (SIGTERM)."""
    try:
        from ari_apps.queue_router import QueueRouter
    except ImportError as exc:
        raise SystemExit(f"{MISSING} ({exc})") from None
    from callcenter.agents.state import Login
    from callcenter.asterisk.ari import ARIClient
    from callcenter.asterisk.instance import AsteriskInstance
    from callcenter.config.loader import load_config
    from callcenter.storage import (
        default_sqlite_url,
        make_engine,
        make_sessionmaker,
        upgrade,
    )

    config = load_config(config_dir).config
    instance = AsteriskInstance(home)
    creds = instance.credentials
    url = default_sqlite_url(home)
    await upgrade(url)
    # BEGIN IMMEDIATE: the router's transactions read, then write. With SQLite's default
    # deferred BEGIN (WAL), a write that follows another connection's commit fails at once
    # with "database is locked" (busy_timeout does not apply to a lock upgrade), and the
    # router hangs the leg up: measured here at 4 calls/s. ``--deferred`` shows it.
    engine = make_engine(url, sqlite_immediate=immediate)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with ARIClient(instance.ari_url, username=creds.ari_user,
                             password=creds.ari_password, app=config.settings.queue_app) as ari:
            router = QueueRouter(config, ari, make_sessionmaker(engine), node="bench")
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(router.run(), name="queue-router")
                ready = getattr(router, "ready", None)
                if ready is not None:
                    async with asyncio.timeout(30):
                        await ready.wait()
                now = router.clock()
                for name in config.agents:
                    await router.store.apply(name, Login(), now, reason="bench")
                    router.agent_changed(name)
                print(f"{READY}: {len(config.agents)} agents logged in", flush=True)
                await stop.wait()
                task.cancel()
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--deferred", action="store_true",
                        help="SQLite's default deferred BEGIN instead of BEGIN IMMEDIATE")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.home, args.config, immediate=not args.deferred))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(args.home, args.config, immediate=not args.deferred))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
