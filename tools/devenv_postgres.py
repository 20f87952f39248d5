"""The PostgreSQL server of the development environment (``tools/devenv.py``).

The server that answers (libpq's environment: PGHOST, PGUSER...), else a
private cluster in the checkout's ``.pgdata/``. psycopg2 is imported where it
is used: this module is imported by phase 1 too, before the virtualenv exists.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from devenv_common import PGDATA_DIR, ROOT, Stop, data_dir, say

PRIVATE_PG_USER = "odoo"  # Odoo refuses to connect as "postgres"


class Postgres:
    """The server Odoo uses: the one that answers, else a private cluster."""

    def __init__(self):
        self.params = {}  # psycopg2 / Odoo connection settings; {} = libpq env
        self.started_here = False
        self.bindir = None

    # -- connection helpers
    def connect(self, dbname="postgres"):
        import psycopg2

        return psycopg2.connect(dbname=dbname, connect_timeout=5, **self.params)

    def query(self, sql, args=(), dbname="postgres"):
        conn = self.connect(dbname)
        conn.autocommit = True
        try:
            with conn.cursor() as cr:
                cr.execute(sql, args)
                return cr.fetchall() if cr.description else None
        finally:
            conn.close()

    # -- setup
    def ensure(self):
        import psycopg2

        user = os.environ.get("PGUSER") or os.environ.get("USER") or ""
        try:
            self.connect().close()
        except psycopg2.OperationalError as exc:
            text = str(exc)
            unreachable = (
                "could not connect" in text
                or "Connection refused" in text
                or "No such file" in text
                or "timeout expired" in text
                or "could not translate host name" in text
            )
            if not unreachable:
                raise Stop(
                    f"PostgreSQL answers but refuses the connection: {text.strip()}\n"
                    "Create a role for you with the right to create databases, e.g. "
                    "sudo -u postgres createuser --createdb $USER "
                    "(or set PGUSER/PGPASSWORD/PGHOST)."
                ) from exc
            say("no PostgreSQL server answers: using a private cluster in .pgdata/")
            self.start_private()
        else:
            if user == "postgres" or self.query("SELECT current_user")[0][0] == "postgres":
                raise Stop(
                    "Odoo refuses to connect as the PostgreSQL role 'postgres': "
                    "set PGUSER to another role with CREATEDB "
                    "(sudo -u postgres createuser --createdb <name>)."
                )
            allowed = self.query(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            )[0][0]
            if not allowed:
                raise Stop(
                    "your PostgreSQL role may not create databases: "
                    "sudo -u postgres psql -c 'ALTER ROLE \"<you>\" CREATEDB'"
                )

    def _find_bindir(self):
        candidates = []
        if shutil.which("pg_ctl"):
            candidates.append(Path(shutil.which("pg_ctl")).resolve().parent)
        candidates += sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
        candidates += [Path("/usr/local/pgsql/bin"), Path("/opt/homebrew/bin")]
        for path in candidates:
            if (path / "initdb").exists() and (path / "pg_ctl").exists():
                return path
        raise Stop(
            "no PostgreSQL server answers and no PostgreSQL binaries (initdb, "
            "pg_ctl) were found. Either start a server / point PGHOST and PGPORT "
            "at one, or install PostgreSQL (Debian/Ubuntu: apt-get install "
            "postgresql), then rerun."
        )

    def _as_owner(self, cmd):
        # initdb/postgres refuse to run as root: run them as "postgres".
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *cmd]
        return cmd

    def start_private(self):
        import psycopg2

        self.bindir = self._find_bindir()
        data = PGDATA_DIR / "data"
        sock = PGDATA_DIR / "run"
        if len(str(sock)) > 80:  # unix socket paths are limited to ~107 bytes
            tag = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
            sock = Path(tempfile.gettempdir()) / f"deal_stages-pg-{tag}"
        self.params = {"host": str(sock), "port": 5432, "user": PRIVATE_PG_USER}
        # Odoo gives PG* variables precedence over its config file: point them
        # at the private cluster for every child process.
        for name in ("PGHOSTADDR", "PGPASSWORD", "PGDATABASE", "PGSERVICE"):
            os.environ.pop(name, None)
        os.environ.update(PGHOST=str(sock), PGPORT="5432", PGUSER=PRIVATE_PG_USER)
        PGDATA_DIR.mkdir(exist_ok=True)
        sock.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            try:
                shutil.chown(PGDATA_DIR, "postgres")
                shutil.chown(sock, "postgres")
            except (LookupError, OSError) as exc:
                raise Stop(
                    "running as root, the private PostgreSQL cluster needs an OS "
                    "user 'postgres' (initdb refuses root): create it or run as "
                    "a normal user"
                ) from exc
            probe = subprocess.run(self._as_owner(["test", "-w", str(PGDATA_DIR)]), check=False)
            if probe.returncode:
                raise Stop(
                    f"user 'postgres' cannot reach {PGDATA_DIR} (a parent folder is "
                    "private): run as a normal user, or use a PostgreSQL server"
                )
        if not (data / "PG_VERSION").exists():
            say(f"initialising a private PostgreSQL cluster in {data} ...")
            cmd = [
                str(self.bindir / "initdb"),
                "-D", str(data),
                "-U", PRIVATE_PG_USER,
                "--auth=trust",
                "-E", "UTF8",
                "--locale=C",
            ]  # fmt: skip
            out = subprocess.run(self._as_owner(cmd), capture_output=True, text=True, check=False)
            if out.returncode:
                raise Stop(f"initdb failed:\n{out.stdout}{out.stderr}")
        try:
            self.connect().close()
            return  # already running (another make command of this checkout)
        except psycopg2.OperationalError:
            pass  # not running: start it
        say("starting the private PostgreSQL cluster ...")
        log = PGDATA_DIR / "postgresql.log"
        cmd = [
            str(self.bindir / "pg_ctl"),
            "-D", str(data),
            "-l", str(log),
            "-w",
            # no TCP: the private cluster must not collide with any other server
            "-o", f"-k {sock} -c listen_addresses='' -p 5432",
            "start",
        ]  # fmt: skip
        out = subprocess.run(self._as_owner(cmd), capture_output=True, text=True, check=False)
        if out.returncode:
            raise Stop(f"the private PostgreSQL cluster did not start; see {log}")
        self.started_here = True

    def stop(self):
        if self.started_here:
            cmd = [str(self.bindir / "pg_ctl"), "-D", str(PGDATA_DIR / "data")]
            subprocess.run(
                self._as_owner([*cmd, "-m", "fast", "-w", "stop"]),
                capture_output=True,
                check=False,
            )
            self.started_here = False

    # -- databases
    def db_exists(self, name):
        return bool(self.query("SELECT 1 FROM pg_database WHERE datname = %s", (name,)))

    def drop_db(self, name):
        from psycopg2 import sql

        self.query(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        shutil.rmtree(data_dir() / "filestore" / name, ignore_errors=True)

    def module_states(self, name, modules):
        """{module: (state, version)}; None if the db is not an Odoo database."""
        import psycopg2

        try:
            rows = self.query(
                "SELECT name, state, latest_version FROM ir_module_module"
                " WHERE name = ANY(%s) OR name = 'base'",
                (list(modules) or [""],),
                dbname=name,
            )
        except psycopg2.Error:
            return None
        return {row[0]: (row[1], row[2]) for row in rows}
