"""The floor of any FastAGI dip: a FastAGI server that does no work at all.

    python bench/agi_floor.py --port N

It reads the ``agi_*`` header, sends the one command ``account_lookup`` sends (an
``EXEC MSet`` of the five variables, here fixed values), reads the answer and closes,
which is the least a FastAGI dip can ask of Asterisk. ``bench/ivr.py`` (c) runs it in a
loop next to the real script: Asterisk's CPU per dip with this server is what no
optimisation of the FastAGI server can go below. Listens on 127.0.0.1 only; every
read has a timeout.
"""

from __future__ import annotations

import argparse
import asyncio

_MSET = (b'EXEC MSet "CC_ACCOUNT_ID=1,CC_ACCOUNT_NAME=Ada Lovelace,CC_ACCOUNT_LANGUAGE=en,'
         b'CC_ACCOUNT_VIP=1,CC_LOOKUP_STATUS=found"\n')


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        async with asyncio.timeout(10):
            while (await reader.readline()) not in (b"\n", b""):
                pass  # the agi_* header, up to its blank line
            writer.write(_MSET)
            await writer.drain()
            await reader.readline()  # 200 result=0
    except (TimeoutError, ConnectionError):
        pass  # the channel hung up: nothing to clean but the socket
    finally:
        writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(_serve_one, "127.0.0.1", port)
    print("AGI floor listening", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
