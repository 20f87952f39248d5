"""Shared plumbing of ``make bench``, ``make load`` and ``make lifecycle``.

These scripts run with the project venv's Python (``make`` prepares it), or with
any Python that can import Odoo's dependencies: the Odoo source is then found
the way the bootstrap finds it (``$ODOO_SRC``, importable ``odoo``, the cache).
PostgreSQL is the one the bootstrap uses (``tools/devenv.py``): the server that
answers, else the checkout's private cluster.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))

from devenv_odoo import write_config
from devenv_postgres import Postgres
from devenv_setup import resolve_odoo


def say(msg):
    print(msg, flush=True)


def odoo_source():
    """The Odoo 19.0 source tree, made importable."""
    try:
        import odoo.release

        return Path(odoo.release.__file__).resolve().parent.parent
    except ImportError:
        pass
    src = resolve_odoo()
    sys.path.insert(0, str(src))
    return src


class Harness:
    """Odoo source, PostgreSQL, a config file; databases made with odoo-bin."""

    def __init__(self, quiet=False):
        self.src = odoo_source()
        self.pg = Postgres()
        self.pg.ensure()
        self.conf = write_config(self.src, self.pg)
        self.quiet = quiet

    def close(self):
        self.pg.stop()

    def odoo_bin(self, *args):
        return [sys.executable, str(self.src / "odoo-bin"), "-c", str(self.conf), *args]

    def run_odoo(self, db, *args, check=True):
        """Run odoo-bin once (install, upgrade, uninstall...) and stop."""
        cmd = self.odoo_bin(
            "-d", db, *args, "--stop-after-init", "--no-http", "--log-level=warn"
        )  # fmt: skip
        started = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        errors = [
            line
            for line in (out.stdout + out.stderr).splitlines()
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
        ]
        if check and (out.returncode or errors):
            sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
            raise SystemExit(f"odoo-bin {' '.join(args)} failed on {db}")
        return time.monotonic() - started, out

    def create_db(self, db, modules="deal_stages", demo=False):
        self.pg.drop_db(db)
        args = ["-i", modules] + (["--with-demo"] if demo else [])
        seconds, _out = self.run_odoo(db, *args)
        return seconds

    def drop_db(self, db):
        self.pg.drop_db(db)

    def registry(self, db):
        """Odoo configured for ``db`` in this process; returns its registry."""
        from odoo.modules.registry import Registry
        from odoo.tools import config

        if not getattr(self, "_configured", False):
            level = os.environ.get("ODOO_LOG_LEVEL", "warn")
            config.parse_config(
                ["-c", str(self.conf), "-d", db, f"--log-level={level}", "--no-http"],
                setup_logging=True,
            )
            self._configured = True
        return Registry(db)
