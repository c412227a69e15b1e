"""The benchmarks: synthetic data at scale, the code that times the product on
it, and the request timings of the interface.

- `runner.py`: planning and executing a campaign (`manage.py bench_campaign`);
- `imports.py`: the CSV import (`manage.py bench_import`);
- `sync.py`: the list-driven subscriber sync (`manage.py bench_sync`);
- `simbench.py`: how fast the simulator takes SMS sends (`python -m benchmarks.simbench`);
- `callbacks.py`: Vibes callbacks at volume (`python -m benchmarks.callbacks`), and
  `triggers.py`: from a callback to the trigger campaign's Vibes call (`manage.py bench_triggers`);
- `posting.py`: what those two share: gunicorn serving the app, and a poster that
  keeps a fixed schedule;
- `harness.py`: what they share: a scratch database in a child process, the
  simulator in a process of its own, peak memory, a settled disk;
- `test_*.py` with `conftest.py`: server times through Django's test client
  with pytest-benchmark (`pytest benchmarks`), outside the suite's test paths.

The `bench_*` commands of the apps are the entry points of the first three;
no other code of the apps imports this package. The README's benchmark
sections hold the figures.
"""
