"""Benchmark plumbing: a throwaway database with every table, and counters.

Every benchmark module in bench/ has a main() that prints its figures; `python -m bench`
runs them all. The database is a fresh SQLite file unless DATABASE_URL is set.
"""

import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_ready = False


def setup_django():
    """Configure Django on a fresh database with every table created from the models."""
    global _ready
    if _ready:
        return
    sys.path.insert(0, str(ROOT))
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='devpilot-bench-')}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.conf import settings

    django.setup()
    settings.MIGRATION_MODULES = {app.split(".")[-1]: None for app in settings.INSTALLED_APPS}
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", run_syncdb=True, verbosity=0)
    _ready = True


@contextmanager
def count_queries():
    """with count_queries() as queries: ...; afterwards len(queries) is the number of SQL queries."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    reset_queries()  # the test client resets the log at each request start: begin from zero
    captured = []
    with CaptureQueriesContext(connection) as ctx:
        yield captured
    captured.extend(ctx.captured_queries)  # now, before a later request resets the log


def median_time(fn, repeat=5):
    """Median wall time of fn() in milliseconds over `repeat` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def report(title, rows):
    print(f"\n{title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
