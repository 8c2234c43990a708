"""Run every benchmark: python -m bench [name ...]

Each module's main() sets up what it needs (most call bench.common.setup_django(); `web` starts its own
gunicorn on PostgreSQL)."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main(names):
    available = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name not in ("common", "__main__"))
    for name in names or available:
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
