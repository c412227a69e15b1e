"""How fast the simulator takes SMS sends: `python -m benchmarks.simbench`.

Starts the simulator in its own process (as `manage.py vibes_simulator`
runs), then sends SMS through the real `VibesClient` from N threads over N
keep-alive connections, and prints sends per second.

With `--limit N` the clients keep a rate limit of N requests/s as the app
does (`vibes.ratelimit`), and the simulator answers 429 above N requests in
a second (or `--vibes-limit`), as Vibes would; the report then says how
close to it the clients got, and the busiest second the simulator saw (by
arrival). With `--processes P --redis URL`, P processes of N threads share
one limit through Redis, like Celery workers.
"""

import argparse
import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from vibes.client import VibesClient
from vibes.ratelimit import RateLimiter, RedisRateLimiter
from vibes.simulator import VibesSimulator


def _serve(port_queue, stop_event, rate_limit, latency_ms):
    simulator = VibesSimulator(port=0, rate_limit=rate_limit, latency_ms=latency_ms).start()
    port_queue.put(simulator.port)
    stop_event.wait()
    simulator.stop()


def _send(url, args, key, start_at, results):
    """One client process: sends from `args.connections` threads until the time is up."""
    if not args.limit:
        limiter = None
    elif args.redis:
        limiter = RedisRateLimiter(args.redis, args.limit, key=key)
    else:
        limiter = RateLimiter(args.limit)
    client = VibesClient(
        platform_url=url,
        connect_url=url,
        company_key="demo-company",
        username="demo",
        password="demo-password",
        short_code="12345",
        rate_limiter=limiter,
        pool_size=args.connections,
    )
    time.sleep(max(0.0, start_at - time.time()))
    began = time.monotonic()
    deadline = began + args.seconds
    sent = [0] * args.connections

    def worker(index):
        n = 0
        while time.monotonic() < deadline:
            client.send_sms(to="+15551230001", text=f"bench {index}-{n}")
            n += 1
        sent[index] = n

    with ThreadPoolExecutor(args.connections) as pool:
        list(pool.map(worker, range(args.connections)))
    results.put((sum(sent), time.monotonic() - began))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16, help="threads (and connections) per process")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--limit", type=float, default=0, help="the clients' rate limit, requests/s")
    parser.add_argument("--vibes-limit", type=float, default=None, help="the simulator's (default: --limit)")
    parser.add_argument("--latency-ms", type=float, default=0, help="added by the simulator to every answer")
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--redis", default="", help="Redis URL: the processes share one limit through it")
    args = parser.parse_args(argv)
    if args.processes > 1 and args.limit and not args.redis:
        parser.error("several processes keep one limit only through Redis: give --redis")
    vibes_limit = args.limit if args.vibes_limit is None else args.vibes_limit

    port_queue, stop_event = multiprocessing.Queue(), multiprocessing.Event()
    server = multiprocessing.Process(
        target=_serve, args=(port_queue, stop_event, vibes_limit, args.latency_ms), daemon=True
    )
    server.start()
    url = f"http://127.0.0.1:{port_queue.get(timeout=60)}"
    results = multiprocessing.Queue()
    start_at = time.time() + 1.0  # every process starts sending at once
    clients = [
        multiprocessing.Process(target=_send, args=(url, args, f"simbench:{start_at}", start_at, results))
        for _ in range(args.processes)
    ]
    for client in clients:
        client.start()
    counts, times = zip(*(results.get() for _ in clients), strict=True)
    total, elapsed = sum(counts), max(times)
    for client in clients:
        client.join()
    stats = requests.get(f"{url}/_simulator/stats", timeout=60).json()
    stop_event.set()
    server.join(5)
    print(
        f"{total} SMS in {elapsed:.1f} s over {args.connections} keep-alive connections"
        f"{f' in each of {args.processes} processes' if args.processes > 1 else ''}: "
        f"{total / elapsed:.1f} sends/s"
    )
    if vibes_limit:
        refused = stats["by_status"].get("429", 0)
        print(
            f"Vibes limit {vibes_limit:g}/s: {100 * total / elapsed / vibes_limit:.1f}% of it; "
            f"busiest second at the simulator {stats['max_requests_per_second']} requests; "
            f"{refused} answered 429"
        )


if __name__ == "__main__":
    threading.current_thread().name = "simbench"
    main()
