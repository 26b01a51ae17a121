"""Backend client throughput: InstanceClient beside a raw aiohttp client, in one run.

5,000 health GETs at concurrency 50 against the backend simulator, which runs in its own
process so the client under test has the event loop to itself. Rounds alternate between
the clients so machine noise hits both alike; the figure that matters is the ratio.

    python bench/backend_throughput.py            # human table
    python bench/backend_throughput.py --json     # one JSON object with every figure

``--transports`` also measures the transport options the client could ship with.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import httpx_aiohttp

from bot.backend import HealthInfo, InstanceClient
from bot.backend.client import default_transport
from bot.sim.process import start_simulator, stop_process


def instance_ids(url: str) -> list[str]:
    return [i["id"] for i in httpx.get(url + "/instances", timeout=30).json()]


async def drive(
    fetch: Callable[[str], Awaitable[object]], ids: list[str], total: int, concurrency: int
) -> float:
    """Run ``total`` fetches with ``concurrency`` workers; return requests per second."""
    counter = iter(range(total))

    async def worker() -> None:
        for n in counter:
            await fetch(ids[n % len(ids)])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


async def rate_instance_client(
    url: str,
    ids: list[str],
    total: int,
    concurrency: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> float:
    async with InstanceClient(url, transport=transport) as client:
        await client.get_health(ids[0])  # warm the pool
        return await drive(client.get_health, ids, total, concurrency)


async def rate_raw_aiohttp(url: str, ids: list[str], total: int, concurrency: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def fetch(instance_id: str) -> object:
            async with session.get(f"{url}/instances/{instance_id}/health") as response:
                response.raise_for_status()
                return await response.json()

        await fetch(ids[0])
        return await drive(fetch, ids, total, concurrency)


TRANSPORTS: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
    "httpx default pool": lambda: httpx.AsyncHTTPTransport(),
    "httpx pool, 100 keep-alive": lambda: httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)
    ),
    "httpx-aiohttp transport": lambda: httpx_aiohttp.AiohttpTransport(),
    "bot.backend.transport (shipped)": default_transport,
}


async def rate_async_client(url: str, ids: list[str], total: int, concurrency: int) -> float:
    """The first design: httpx.AsyncClient (URL merging, cookie jar) over httpx-aiohttp."""
    async with httpx.AsyncClient(
        base_url=url + "/", transport=httpx_aiohttp.AiohttpTransport()
    ) as client:

        async def fetch(instance_id: str) -> object:
            response = await client.get(f"instances/{instance_id}/health")
            response.raise_for_status()
            return HealthInfo.model_validate_json(response.content)

        await fetch(ids[0])
        return await drive(fetch, ids, total, concurrency)


async def main(args: argparse.Namespace) -> dict[str, object]:
    proc, url = start_simulator(args.instances)
    try:
        ids = await asyncio.to_thread(instance_ids, url)
        client_rates: list[float] = []
        raw_rates: list[float] = []
        for _ in range(args.rounds):
            client_rates.append(
                await rate_instance_client(url, ids, args.requests, args.concurrency)
            )
            raw_rates.append(await rate_raw_aiohttp(url, ids, args.requests, args.concurrency))
        client_rate = statistics.median(client_rates)
        raw_rate = statistics.median(raw_rates)
        result: dict[str, object] = {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "instance_client_rps": round(client_rate),
            "raw_aiohttp_rps": round(raw_rate),
            "ratio": round(client_rate / raw_rate, 3),
            "goal_ratio": 0.5,
            "instance_client_rps_rounds": [round(r) for r in client_rates],
            "raw_aiohttp_rps_rounds": [round(r) for r in raw_rates],
        }
        if args.transports:
            options: dict[str, float] = {}
            for name, factory in TRANSPORTS.items():
                rates = [
                    await rate_instance_client(
                        url, ids, args.requests, args.concurrency, transport=factory()
                    )
                    for _ in range(max(1, args.rounds // 2))
                ]
                options[name] = round(statistics.median(rates))
            rates = [
                await rate_async_client(url, ids, args.requests, args.concurrency)
                for _ in range(max(1, args.rounds // 2))
            ]
            options["httpx.AsyncClient + httpx-aiohttp"] = round(statistics.median(rates))
            result["transport_rps"] = options
        return result
    finally:
        stop_process(proc)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument(
        "--transports", action="store_true", help="also measure each transport option"
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds: 500 requests, once")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds, args.instances = 500, 1, 100
    result = asyncio.run(main(args))
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{args.requests} health GETs at concurrency {args.concurrency}, "
        f"median of {args.rounds} alternating rounds"
    )
    print(f"  InstanceClient : {result['instance_client_rps']:>7} req/s")
    print(f"  raw aiohttp    : {result['raw_aiohttp_rps']:>7} req/s")
    print(f"  ratio a/b      : {result['ratio']:>7}  (goal >= 0.5)")
    for name, rate in dict(result.get("transport_rps", {})).items():  # type: ignore[arg-type]
        print(f"  transport {name:<28}: {rate:>7} req/s")


if __name__ == "__main__":
    cli()
