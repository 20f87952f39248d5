#!/usr/bin/env python3
"""Development environment of deal_stages: the code behind ``make run/test/lint``.

Two phases, so a newcomer needs nothing but a Python 3 to start:

1. with any ``python3``: find the Odoo 19.0 source (fast, before anything
   else), create/refresh the virtualenv, then re-execute this file with the
   venv's Python;
2. inside the venv (psycopg2 and Odoo importable): PostgreSQL, databases,
   Odoo config, then run Odoo, pytest or the linters.

Every failure ends with ``error: <what is wrong>`` plus what to do about it.

This file holds the commands; the rest is by concern: ``devenv_common.py``
(paths, messages, ports), ``devenv_setup.py`` (phase 1: Odoo source, venv),
``devenv_postgres.py`` (the server or the private cluster), ``devenv_odoo.py``
(addons, config file, databases). Everything they import at the top is
standard library, so phase 1 runs with any ``python3``.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from devenv_common import (
    PGDATA_DIR,
    ROOT,
    RUN_DIR,
    SERIES,
    Stop,
    port_free,
    say,
    venv_dir,
    venv_python,
)
from devenv_odoo import (
    ensure_admin_password,
    ensure_db,
    odoo_cmd,
    project_addons,
    write_config,
)
from devenv_postgres import Postgres
from devenv_setup import ensure_venv, resolve_odoo

PHASE2_MARK = "DEAL_STAGES_DEVENV_PHASE2"


def browser():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def run_child(cmd, pg, env=None):
    """Run ``cmd``; when nothing must happen afterwards, become it (exec)."""
    if not pg.started_here:
        sys.stdout.flush()
        os.execve(cmd[0], cmd, env or os.environ)
    # A private cluster must be stopped afterwards: stay as parent. Ctrl-C
    # reaches the child through the terminal's process group; just wait.
    child = subprocess.Popen(cmd, env=env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    return child.wait()


def cmd_run(args, src):
    pg = Postgres()
    pg.ensure()
    try:
        conf = write_config(src, pg)
        db, port = args.db, args.port
        if not port_free(port):
            raise Stop(
                f"port {port} is busy (another Odoo? see: ss -ltnp 'sport = :{port}'). "
                f"Stop it or choose another port: make run PORT=8070"
            )
        addons = project_addons(src)
        ensure_db(src, pg, conf, db, addons, demo=True)
        ensure_admin_password(pg, db)
        say(f"Odoo on http://localhost:{port}  database {db}  login admin / password admin")
        say("Ctrl-C to stop")
        cmd = odoo_cmd(src, conf, "-d", db, f"--db-filter=^{db}$", f"--http-port={port}")
        return run_child(cmd, pg)
    finally:
        pg.stop()


def cmd_test(args, src):
    pg = Postgres()
    pg.ensure()
    try:
        conf = write_config(src, pg)
        db = args.test_db
        addons = project_addons(src)
        if not addons:
            raise Stop("no addon to test")
        env = dict(os.environ)
        if os.environ.get("TEST_PORT"):
            if not port_free(int(os.environ["TEST_PORT"])):
                raise Stop(
                    f"TEST_PORT={os.environ['TEST_PORT']} is busy: choose another or unset it"
                )
        else:
            # pytest-odoo picks its own free port; TEST_PORT pins it (conftest.py)
            env.pop("TEST_PORT", None)
        if not browser():
            say(
                "warning: no Chromium on PATH: tours will be skipped"
                + (" and fail the run (CI=true)" if os.environ.get("CI") == "true" else "")
                + " (install it: apt-get install chromium)"
            )
        if args.target:
            ensure_db(src, pg, conf, db, addons, demo=False)
            targets = args.target
        else:
            ensure_db(src, pg, conf, db, addons, demo=False, fresh=True)
            targets = [f"{a}/tests" for a in addons if (ROOT / a / "tests").is_dir()]
        say(f"pytest {' '.join(targets)} on database {db} ...")
        cmd = [
            sys.executable, "-m", "pytest",
            f"--odoo-database={db}",
            f"--odoo-config={conf}",
            "--odoo-http",
            "--odoo-log-level=warn",
            *targets,
        ]  # fmt: skip
        sys.stdout.flush()
        code = subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode
        if code == 5:
            print(f"error: pytest collected no tests in {' '.join(targets)}", file=sys.stderr)
            return 1
        if not args.target and os.environ.get("SKIP_LIFECYCLE") != "1":
            # install on existing data, upgrade, uninstall (+ Odoo's crm tests):
            # each needs databases of its own, so they run outside pytest
            say("lifecycle checks (tools/lifecycle.py) ...")
            sys.stdout.flush()
            lifecycle = [
                sys.executable,
                str(ROOT / "tools" / "lifecycle.py"),
                "--db-prefix",
                f"{db}_lifecycle",
            ]
            code = subprocess.run(lifecycle, cwd=ROOT, env=env, check=False).returncode or code
        return code
    finally:
        pg.stop()


def cmd_lint(args, src):
    addons = sorted(p.parent.name for p in ROOT.glob("deal_stages*/__manifest__.py"))
    bindir = Path(sys.executable).parent
    failed = []
    steps = [
        ("ruff check", [bindir / "ruff", "check", "--no-fix", "."]),
        ("ruff format", [bindir / "ruff", "format", "--check", "."]),
        ("pylint-odoo", [bindir / "pylint", "--rcfile=.pylintrc", *addons]),
        ("README.rst up to date", [sys.executable, "tools/build_readme.py", "--check"]),
    ]
    for name, cmd in steps:
        say(f"{name} ...")
        if subprocess.run([str(c) for c in cmd], cwd=ROOT, check=False).returncode:
            failed.append(name)
    if failed:
        print(f"error: lint failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    say("lint clean")
    return 0


def cmd_format(args, src):
    """Apply what ruff can fix by itself (format + safe lint fixes)."""
    bindir = Path(sys.executable).parent
    subprocess.run([str(bindir / "ruff"), "format", "."], cwd=ROOT, check=False)
    return subprocess.run(
        [str(bindir / "ruff"), "check", "--fix", "."], cwd=ROOT, check=False
    ).returncode


def cmd_clean(args):
    pg = Postgres()
    if (PGDATA_DIR / "data" / "postmaster.pid").exists():
        try:
            pg.bindir = pg._find_bindir()
            pg.started_here = True
            pg.stop()
            say("stopped the private PostgreSQL cluster")
        except Stop:
            pass
    for path in [RUN_DIR, ROOT / ".pytest_cache", ROOT / ".ruff_cache"]:
        shutil.rmtree(path, ignore_errors=True)
    venv = venv_dir()
    for path in ROOT.rglob("__pycache__"):
        if venv not in path.parents:
            shutil.rmtree(path, ignore_errors=True)
    say("removed .run/ and caches (kept .venv/ and .pgdata/: rm -rf them to start over)")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="devenv", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve the demo database")
    run.add_argument("--db", default="deal_stages_demo")
    run.add_argument("--port", type=int, default=8069)
    test = sub.add_parser("test", help="fresh test database + the whole suite")
    test.add_argument("--test-db", default="deal_stages_test")
    test.add_argument("target", nargs="*", help="pytest node ids (on the existing test db)")
    sub.add_parser("lint", help="ruff + pylint-odoo")
    sub.add_parser("format", help="ruff format + ruff check --fix")
    sub.add_parser("prepare", help="Odoo source + venv only")
    sub.add_parser("clean", help="remove generated files")
    args = parser.parse_args(argv)
    try:
        if args.command == "clean":
            return cmd_clean(args)
        if os.environ.get(PHASE2_MARK) is None:
            # Phase 1: the Odoo source check comes first so it fails fast.
            src = resolve_odoo()
            say(f"Odoo {SERIES} source: {src}")
            ensure_venv(src)
            if args.command == "prepare":
                return 0
            env = dict(os.environ, **{PHASE2_MARK: str(src)})
            python = str(venv_python())
            sys.stdout.flush()
            os.execve(python, [python, __file__, *(argv or sys.argv[1:])], env)
        src = Path(os.environ[PHASE2_MARK])
        return {"run": cmd_run, "test": cmd_test, "lint": cmd_lint, "format": cmd_format}[
            args.command
        ](args, src)
    except Stop as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
