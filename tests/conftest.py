"""Shared fixtures: a real Asterisk 22 with the example config, once per session.

The ``pbx`` fixture installs Asterisk from Debian unstable (cached in
``$CALLCENTER_CACHE`` or ``~/.cache/callcenter``), configures an instance on
free loopback ports in a temporary home, applies ``config/example`` (with the
FastAGI port moved to a free one), seeds a SQLite database with the demo
accounts, starts a FastAGI server in the test event loop with a controllable
clock, generates the agents' softphone passwords into the instance's secrets file
(the example's agents get generated PJSIP endpoints; a test registers one with a
real softphone, baresip: ``pbx.agent_phone("carmen")``), and starts Asterisk.
Nothing is skipped when a part is missing: the fixture fails, so CI can never
pass without the real PBX.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import agi_scripts
from callcenter.asterisk import variables as V
from callcenter.asterisk.agi import AGIContext, FastAGIServer
from callcenter.asterisk.ami.client import AMIClient
from callcenter.asterisk.instance import AsteriskInstance, InstanceSettings
from callcenter.asterisk.provision import install
from callcenter.config.loader import LoadedConfig, load_config
from callcenter.testing.ports import (
    claim,
    free_port,
    free_udp_range,
    free_udp_tcp_port,
    release,
)
from tests.aio import cancel_and_wait

if TYPE_CHECKING:
    from callcenter.asterisk.ari import ARIClient
    from callcenter.testing.softphone import Softphone
    from tests.integration.postgres import PostgresServer
    from tests.integration.queue_router import QueueRouterStub
    from tests.integration.route import RouteObserver

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "example"
#: A Wednesday at 10:00 in New York: the example center is open.
OPEN_TIME = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
#: How many (SIP, media) pairs one session may try: the sequence ends at SIP port 42999.
_SIPP_PAIRS = 2000


if importlib.util.find_spec("xdist") is not None:
    # Only with pytest-xdist installed (a hook of an absent plugin is an error);
    # called only for ``-n``: a serial run never sees it.
    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
        """``--dist loadfile``: slowest files first, the timing tests together, last
        (:mod:`tests.xdist_schedule`); any other ``--dist`` mode as xdist does it."""
        if config.getoption("dist") != "loadfile":
            return None
        from tests.xdist_schedule import make_scheduler

        return make_scheduler(config, log)


class FakeClock:
    """The FastAGI scripts' notion of "now"; tests move it."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class PBX:
    instance: AsteriskInstance
    loaded: LoadedConfig
    config_dir: Path
    clock: FakeClock
    agi: FastAGIServer
    db_url: str
    _ports: count[int] = field(default_factory=lambda: count(0))

    @property
    def sip_port(self) -> int:
        return self.instance.settings.sip_port

    def sipp_ports(self) -> tuple[int, int]:
        """A (SIP, media) port pair for one sipp caller, unused in this session and
        reserved for this process (other xdist workers skip it)."""
        for _ in range(_SIPP_PAIRS):
            n = next(self._ports)
            sip, media = 41000 + n, 43000 + 4 * n
            if sip >= 43000:
                break
            # The media ports too (sipp binds media and media+2, baresip media..media+3):
            # they lie in the kernel's ephemeral range, where any UDP client socket of
            # another process (PJSIP's DNS resolver, of every node) may sit.
            # baresip also listens on TCP (and TLS) at the SIP port and the next: an
            # outgoing TCP connection's ephemeral port there made it exit with 98.
            if claim(sip, 2, udp=True, tcp=True):
                if claim(media, 4):
                    return sip, media
                release(sip, 2)
        raise RuntimeError("no free sipp port pair left in 41000-42999 / 43000-50999")

    def agent_password(self, agent: str) -> str:
        """The agent's generated softphone password (from the instance's secrets.json)."""
        from callcenter.asterisk.secrets import stored_agent_password

        password = stored_agent_password(self.instance.secrets_file, agent)
        assert password is not None, f"no softphone password for {agent}"
        return password

    def agent_phone(self, agent: str, *, password: str | None = None,
                    require_registration: bool = True, auto_answer: bool = True) -> Softphone:
        """A real softphone (baresip, ``callcenter.testing.softphone``) that registers as
        ``agent`` on entry, answers calls (unless ``auto_answer`` is False: it rings) and
        dials (``await phone.dial("*70")``); ``password`` overrides the agent's own (to
        test a wrong one)."""
        from callcenter.testing.softphone import Softphone

        # From the callers' sequence, not the kernel's ephemeral range, so that a
        # caller placed at the same moment cannot be handed the phone's SIP port;
        # baresip listens for SIP on UDP and TCP.
        # baresip also listens for SIP over TLS on the next port (baresip 1.0 cannot turn
        # that transport off): sipp_ports() takes both.
        sip, media = self.sipp_ports()
        return Softphone(agent, password or self.agent_password(agent),
                         registrar_port=self.sip_port, sip_port=sip, ctrl_port=free_port(),
                         rtp_port=media, require_registration=require_registration,
                         auto_answer=auto_answer)

    def queue_router(self) -> AbstractAsyncContextManager[QueueRouterStub]:
        """The test playing the queue router, registered on entry (ARI, settings.queue_app)."""
        from tests.integration.queue_router import queue_router_stub

        creds = self.instance.credentials
        return queue_router_stub(self.instance.ari_url, username=creds.ari_user,
                                 password=creds.ari_password,
                                 app=self.loaded.config.settings.queue_app)

    def set_clock(self, when: dt.datetime) -> None:
        """Move time for the dialplan's schedule checks (the ``CC_CLOCK_OVERRIDE``
        global) and for the FastAGI scripts (their clock)."""
        self.clock.now = when
        self.instance.cli(f"dialplan set global {V.CLOCK_OVERRIDE} {int(when.timestamp())}")

    async def wait_no_channels(self, timeout: float = 10.0) -> int:
        """Wait until Asterisk has no channel; return how many remain."""
        return await asyncio.to_thread(self.instance.wait_no_channels, timeout)


def _example_copy(dest: Path, fastagi_port: int, *, http_api_port: int | None = None) -> Path:
    """The example config with FastAGI on *fastagi_port* and the HTTP API on
    *http_api_port* (a free port when not given: never the fixed 8090)."""
    shutil.copytree(EXAMPLE, dest)
    settings = dest / "settings.yaml"
    text = settings.read_text()
    for fixed in ("    port: 4573\n", "    port: 8090\n"):
        assert fixed in text, "example settings.yaml changed: update the fixture"
    text = text.replace("    port: 4573\n", f"    port: {fastagi_port}\n")
    text = text.replace("    port: 8090\n", f"    port: {http_api_port or free_port()}\n")
    settings.write_text(text)
    return dest


@pytest.fixture(scope="session")
def asterisk_installation():
    """Asterisk 22 unpacked from Debian unstable (cached across runs)."""
    return install()


@pytest.fixture(scope="session")
async def pbx(tmp_path_factory: pytest.TempPathFactory, asterisk_installation) -> AsyncIterator[PBX]:
    from callcenter.apply import apply_files
    from callcenter.storage import default_sqlite_url, make_engine, make_sessionmaker
    from callcenter.storage.directory import AccountDirectory
    from callcenter.storage.migrate import upgrade
    from callcenter.storage.repositories import seed_demo_accounts
    from tests.passwords import instance_render

    home = tmp_path_factory.mktemp("home")
    rtp, _ = free_udp_range(50, low=20000, high=30000)
    instance = AsteriskInstance(home)
    instance.setup(asterisk_installation, InstanceSettings(
        sip_port=free_udp_tcp_port(), http_port=free_port(), ami_port=free_port(),
        rtp_start=rtp, rtp_end=rtp + 49,
    ))
    config_dir = _example_copy(tmp_path_factory.mktemp("config") / "example", free_port())
    loaded = load_config(config_dir, sounds=asterisk_installation.sound_languages(),
                         agi_scripts=agi_scripts.handlers().keys())

    db_url = default_sqlite_url(home)
    await upgrade(db_url)
    engine = make_engine(db_url)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        await seed_demo_accounts(session)

    clock = FakeClock(OPEN_TIME)
    accounts = AccountDirectory(db_url)
    ctx = AGIContext(config=loaded.config, clock=clock, db=sessionmaker, accounts=accounts)
    fa = loaded.config.settings.fastagi
    agi = FastAGIServer(agi_scripts.handlers(), ctx, host=fa.host, port=fa.port)
    await agi.start()

    apply_files(instance, instance_render(instance, loaded))
    await asyncio.to_thread(instance.start)
    pbx = PBX(instance, loaded, config_dir, clock, agi, db_url)
    await asyncio.to_thread(pbx.set_clock, OPEN_TIME)
    try:
        yield pbx
    finally:
        await asyncio.to_thread(instance.stop)
        await agi.stop()
        await accounts.close()
        await engine.dispose()


@pytest.fixture
async def clean_pbx(pbx: PBX) -> AsyncIterator[PBX]:
    """The session PBX, with the clock reset; asserts no channel is left after the test."""
    await asyncio.to_thread(pbx.set_clock, OPEN_TIME)
    yield pbx
    left = await pbx.wait_no_channels()
    assert left == 0, f"{left} channel(s) left in Asterisk after the test"


@pytest.fixture(scope="session")
async def ami(pbx: PBX) -> AsyncIterator[AMIClient]:
    """An AMI connection to the session PBX with the generated credentials."""
    creds = pbx.instance.credentials
    async with AMIClient("127.0.0.1", pbx.instance.settings.ami_port,
                         username=creds.ami_user, secret=creds.ami_secret) as client:
        yield client


@pytest.fixture(scope="session")
async def ami_observer(ami: AMIClient) -> AsyncIterator[RouteObserver]:
    """What happens to each call (AMI Newexten, DialEnd, Hangup), per caller number."""
    from tests.integration.route import RouteObserver

    observer = RouteObserver()
    # Subscribed before the fixture returns: no event of a test's call can be missed.
    with ami.subscribe(*RouteObserver.EVENTS) as subscription:
        task = asyncio.create_task(observer.run(subscription), name="route-observer")
        try:
            yield observer
        finally:
            await cancel_and_wait(task)


@pytest.fixture
async def queue_router(pbx: PBX) -> AsyncIterator[QueueRouterStub]:
    """The test plays the queue router: records each StasisStart, hangs the call up."""
    async with pbx.queue_router() as stub:
        yield stub


@pytest.fixture
async def ari_app(pbx: PBX) -> AsyncIterator[ARIClient]:
    """An ARI client registered as the queue router's Stasis app (settings.queue_app)."""
    from callcenter.asterisk.ari import ARIClient

    creds = pbx.instance.credentials
    async with ARIClient(pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password,
                         app=pbx.loaded.config.settings.queue_app) as client:
        yield client


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster for this test session (:mod:`tests.integration.postgres`),
    stopped and deleted afterwards; the test FAILS when PostgreSQL is not installed."""
    from tests.integration.postgres import postgres_cluster

    with postgres_cluster() as server:
        yield server


@pytest.fixture
async def pg_url(postgres_server: PostgresServer) -> str:
    """A new, empty database migrated to head, one per test so tests cannot leak rows."""
    from callcenter.storage.migrate import upgrade
    from tests.integration.postgres import new_database

    url = await new_database(postgres_server)
    await upgrade(url)
    return url


@pytest.fixture
async def fresh_pg_url(postgres_server: PostgresServer) -> str:
    """A new database that was never migrated."""
    from tests.integration.postgres import new_database

    return await new_database(postgres_server)
