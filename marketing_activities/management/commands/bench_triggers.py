"""Benchmark trigger campaigns: latency from a callback's arrival to the flow's Vibes call.

Never touches your database: it runs in a child process on a scratch SQLite
file under var/ (or on --database-url, which must name an empty database)
and prints a JSON report. The benchmark itself is benchmarks/triggers.py:
gunicorn serves the callbacks, posted on a fixed schedule by a client of its
own; the dispatcher works in a thread of each web worker, or, with
--celery-workers N, on N Celery workers on the broker of --broker-url
(default: CELERY_BROKER_URL, else TEST_REDIS_URL).
"""

import json
import os
import sys

from django.core.management.base import BaseCommand, CommandError

from benchmarks import harness, triggers, write_lock


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=50, help="callbacks a second")
        parser.add_argument("--seconds", type=float, default=600, help="how long they arrive")
        parser.add_argument(
            "--database-url", help="an empty database to use instead of a scratch SQLite file"
        )
        parser.add_argument(
            "--celery-workers", type=int, default=0, help="Celery worker processes (0: a thread of this one)"
        )
        parser.add_argument("--broker-url", help="the Redis broker of the Celery workers")
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn's worker processes")
        parser.add_argument(
            "--threads",
            type=int,
            help="threads of each web worker (gthread; 0: sync workers; default 8 on SQLite, else 0)",
        )
        parser.add_argument("--connections", type=int, default=16, help="the poster's connections at most")
        parser.add_argument(
            "--give-up-after",
            type=float,
            default=60,
            help="seconds after its time a callback the server has no room for is no longer posted",
        )
        parser.add_argument(
            "--trace-write-lock",
            action="store_true",
            help="SQLite: time who holds the write lock, and print it by place (benchmarks/write_lock.py)",
        )
        parser.add_argument(
            "--profile",
            action="store_true",
            help="instead: where a trigger's time goes, in one process (cProfile of runs of one person)",
        )
        parser.add_argument("--in-scratch", action="store_true", help="internal: the child process")

    def handle(self, *args, **options):
        if not options["in_scratch"]:
            if options["celery_workers"]:
                broker = (
                    options["broker_url"]
                    or os.environ.get("CELERY_BROKER_URL")
                    or os.environ.get("TEST_REDIS_URL")
                )
                if not broker or not options["database_url"]:
                    raise CommandError("--celery-workers needs a broker (--broker-url) and --database-url.")
                env = {"CELERY_BROKER_URL": broker, "RUNNER_BACKGROUND": "celery"}
            else:
                env = {"RUNNER_BACKGROUND": "thread"}
            harness.run_in_scratch(
                "bench_triggers",
                sys.argv[2:],
                scratch="bench-triggers",
                database_url=options["database_url"],
                env=env,
            )
            return
        if options["profile"]:
            triggers.profile()
            return
        report = triggers.measure(
            rate=options["rate"],
            seconds=options["seconds"],
            celery_workers=options["celery_workers"],
            web_workers=options["web_workers"],
            threads=options["threads"],
            connections=options["connections"],
            give_up_after=options["give_up_after"],
            trace_write_lock=options["trace_write_lock"],
        )
        self.stdout.write(json.dumps(report, indent=2))
        self.stdout.write(triggers.table(report))
        if options["trace_write_lock"]:
            self.stdout.write(write_lock.report())
