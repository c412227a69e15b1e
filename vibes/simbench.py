"""How fast the simulator takes SMS sends: `python -m vibes.simbench`.

Starts the simulator in its own process (as `manage.py vibes_simulator`
runs), then sends SMS through the real `VibesClient` from N threads over N
keep-alive connections, no rate limit, and prints sends per second.
"""

import argparse
import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .client import VibesClient
from .simulator import VibesSimulator


def _serve(port_queue, stop_event):
    simulator = VibesSimulator(port=0).start()
    port_queue.put(simulator.port)
    stop_event.wait()
    simulator.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)

    port_queue, stop_event = multiprocessing.Queue(), multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(port_queue, stop_event), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port_queue.get(timeout=10)}"
    client = VibesClient(
        platform_url=url,
        connect_url=url,
        company_key="demo-company",
        username="demo",
        password="demo-password",
        short_code="12345",
        pool_size=args.connections,
    )
    sent = [0] * args.connections
    deadline = time.monotonic() + args.seconds
    began = time.monotonic()

    def worker(index):
        n = 0
        while time.monotonic() < deadline:
            client.send_sms(to="+15551230001", text=f"bench {index}-{n}")
            n += 1
        sent[index] = n

    with ThreadPoolExecutor(args.connections) as pool:
        list(pool.map(worker, range(args.connections)))
    elapsed = time.monotonic() - began
    stop_event.set()
    server.join(5)
    total = sum(sent)
    print(
        f"{total} SMS in {elapsed:.1f} s over {args.connections} keep-alive connections: "
        f"{total / elapsed:.0f} sends/s"
    )


if __name__ == "__main__":
    threading.current_thread().name = "simbench"
    main()
