#!/usr/bin/env python3
"""Development environment of deal_stages: the code behind ``make run/test/lint``.

Two phases, so a newcomer needs nothing but a Python 3 to start:

1. with any ``python3``: find the Odoo 19.0 source (fast, before anything
   else), create/refresh the virtualenv, then re-execute this file with the
   venv's Python;
2. inside the venv (psycopg2 and Odoo importable): PostgreSQL, databases,
   Odoo config, then run Odoo, pytest or the linters.

Every failure ends with ``error: <what is wrong>`` plus what to do about it.
"""

import argparse
import ast
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"
PGDATA_DIR = ROOT / ".pgdata"
CONSTRAINTS = ROOT / "tools" / "pip-constraints.txt"
PROJECT_REQUIREMENTS = [ROOT / "requirements.txt", ROOT / "requirements-dev.txt"]
SERIES = "19.0"
ARCHIVE_URL = os.environ.get(
    "ODOO_ARCHIVE_URL",
    f"https://github.com/odoo/odoo/archive/refs/heads/{SERIES}.tar.gz",
)
# Bump when the way the venv is built changes, to force a re-install.
VENV_RECIPE = "1"
PHASE2_MARK = "DEAL_STAGES_DEVENV_PHASE2"
PRIVATE_PG_USER = "odoo"  # Odoo refuses to connect as "postgres"


class Stop(Exception):
    """A failure the user can fix; the message says what and how."""


def say(msg):
    print(f"[devenv] {msg}", flush=True)


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "deal_stages"


def venv_dir():
    return Path(os.path.abspath(os.environ.get("VENV") or ROOT / ".venv"))


def venv_python():
    return venv_dir() / "bin" / "python"


# ---------------------------------------------------------------- Odoo source


def odoo_version_of(src):
    """Return the series of the Odoo source tree at ``src`` or None."""
    release = Path(src) / "odoo" / "release.py"
    if not release.is_file():
        return None
    # read, not import: phase 1 must not depend on Odoo's imports
    match = re.search(r"^version_info = \((\d+), (\d+)", release.read_text(), re.MULTILINE)
    return f"{match[1]}.{match[2]}" if match else None


def _check_src(src, label):
    series = odoo_version_of(src)
    if series == SERIES:
        return Path(src).resolve()
    what = f"Odoo {series}, not {SERIES}" if series else "not an Odoo source tree"
    say(f"warning: {label} is {what}: ignored")
    return None


def _src_from_venv():
    python = venv_python()
    if not python.exists():
        return None
    try:
        out = subprocess.run(
            [
                str(python),
                "-c",
                (
                    "import odoo.release, os;"
                    "print(os.path.dirname(os.path.dirname(odoo.release.__file__)))"
                ),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            cwd="/",  # not the checkout: a stray odoo/ folder must not count
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = out.stdout.strip()
    return path if out.returncode == 0 and path else None


def _download_odoo(target):
    """Fetch the official source archive into the cache; False if unreachable."""
    say(f"downloading Odoo {SERIES} source from {ARCHIVE_URL} ...")
    result = {}

    def connect():
        try:
            result["response"] = urllib.request.urlopen(ARCHIVE_URL, timeout=10)
        except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
            result["error"] = exc

    # urlopen's timeout does not cover name resolution: bound the whole
    # connection attempt so a closed network fails in seconds.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(15)
    response = result.get("response")
    if response is None:
        say(f"download failed: {result.get('error', 'no answer within 15 s')}")
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        archive = tmp / "odoo.tar.gz"
        size = int(response.headers.get("Content-Length") or 0)
        done, last = 0, time.monotonic()
        with response, open(archive, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if time.monotonic() - last > 10:
                    last = time.monotonic()
                    total = f" of {size >> 20}" if size else ""
                    say(f"  {done >> 20}{total} MB")
        say("extracting ...")
        with tarfile.open(archive) as tar:
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp / "x", **kwargs)
        (top,) = list((tmp / "x").iterdir())
        if odoo_version_of(top) != SERIES:
            say(f"the downloaded archive is not Odoo {SERIES}")
            return False
        top.rename(target)
        return True
    except Exception as exc:  # noqa: BLE001 - report it, then the three options
        say(f"download failed: {exc}")
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_odoo():
    """Odoo source, in DESIGN.md's order; Stop with the three options if none."""
    env_src = os.environ.get("ODOO_SRC")
    if env_src:
        found = _check_src(env_src, f"ODOO_SRC={env_src}")
        if found:
            return found
    from_venv = _src_from_venv()
    if from_venv:
        found = _check_src(from_venv, f"the odoo importable by the venv ({from_venv})")
        if found:
            return found
    cached = cache_dir() / f"odoo-{SERIES}"
    if cached.exists():
        found = _check_src(cached, f"the cache {cached} (remove it to download again)")
        if found:
            return found
    elif os.environ.get("ODOO_NO_DOWNLOAD") != "1" and _download_odoo(cached):
        return cached.resolve()
    raise Stop(
        f"Odoo {SERIES} source not found (and the download failed).\n"
        "Provide it in one of these ways, then rerun:\n"
        f"  1. ODOO_SRC=/path/to/odoo-{SERIES} make ...   "
        "(a source tree with odoo-bin and odoo/release.py)\n"
        f"  2. an 'odoo' {SERIES} importable by the venv's Python ({venv_python()})\n"
        f"  3. extract the official archive into {cached}\n"
        f"     (mkdir -p {cached.parent} && curl -L {ARCHIVE_URL} | tar xz -C {cached.parent})"
    )


# ---------------------------------------------------------------------- venv


def _odoo_requirements(src):
    """Odoo's requirements minus python-ldap (only auth_ldap needs it)."""
    lines = (src / "requirements.txt").read_text().splitlines()
    kept = [line for line in lines if not line.strip().startswith("python-ldap")]
    return "\n".join(kept) + "\n"


def ensure_venv(src):
    venv = venv_dir()
    python = venv_python()
    odoo_reqs = _odoo_requirements(src)
    if not python.exists():
        if sys.version_info < (3, 10):  # noqa: UP036 - phase 1 runs on any python3
            raise Stop(
                f"Odoo {SERIES} needs Python >= 3.10, this is {sys.version.split()[0]}"
                ": run make with PYTHON=/path/to/python3.1x"
            )
        say(f"creating the virtualenv {venv} ...")
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        except subprocess.CalledProcessError as exc:
            raise Stop(
                f"could not create the virtualenv {venv}: install the venv module "
                "(Debian/Ubuntu: apt-get install python3-venv) or set PYTHON="
            ) from exc
    # Re-install only when a requirement (or the venv's Python) changed
    stamp = venv / ".deal_stages-requirements.sha256"
    stamp_data = [VENV_RECIPE, (venv / "pyvenv.cfg").read_text()]
    stamp_data += [odoo_reqs, CONSTRAINTS.read_text()]
    stamp_data += [path.read_text() for path in PROJECT_REQUIREMENTS]
    digest = hashlib.sha256("\0".join(stamp_data).encode()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != digest:
        started = time.monotonic()
        say("installing Python requirements (Odoo's + the project's) ...")
        reqs = venv / ".deal_stages-odoo-requirements.txt"
        reqs.write_text(odoo_reqs)
        cmd = [str(python), "-m", "pip", "install", "--quiet", "-r", str(reqs)]
        for path in PROJECT_REQUIREMENTS:
            cmd += ["-r", str(path)]
        # setuptools<70 builds Odoo's old pinned sdists (cbor2)
        env = dict(os.environ, PIP_CONSTRAINT=str(CONSTRAINTS))
        # pip's chatter goes to a log, shown only when it fails
        log = venv / ".deal_stages-pip.log"
        with open(log, "w") as out:
            code = subprocess.run(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
            ).returncode
        if code:
            tail = log.read_text().splitlines()[-30:]
            print("\n".join(tail), file=sys.stderr)
            raise Stop(
                f"pip could not install the requirements (full log: {log}). "
                "Check network/index access (pip config list), then rerun; "
                f"to start over: rm -rf {venv}"
            )
        stamp.write_text(digest + "\n")
        say(f"requirements installed in {time.monotonic() - started:.0f} s")
    # Make odoo importable: a .pth pointing at the resolved source. Rewritten
    # each time (cheap) so a changed ODOO_SRC is honoured.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pth = Path(purelib) / "deal_stages_odoo.pth"
    if not pth.exists() or pth.read_text() != f"{src}\n":
        pth.write_text(f"{src}\n")


# ------------------------------------------------------------------ phase 2


def addons_path(src):
    # Odoo adds odoo/addons (base) itself; the checkout holds deal_stages*
    return [src / "addons", ROOT]


def read_manifest(addon_dir):
    return ast.literal_eval((addon_dir / "__manifest__.py").read_text())


def project_addons(src):
    """deal_stages + the deal_stages_* bridges whose dependencies exist."""
    if os.environ.get("ADDONS"):
        return [a.strip() for a in os.environ["ADDONS"].split(",") if a.strip()]
    known = set()
    for path in [*addons_path(src), src / "odoo" / "addons"]:
        if path.is_dir():
            known.update(p.name for p in path.iterdir() if (p / "__manifest__.py").exists())
    selected = []
    for addon in sorted(ROOT.glob("deal_stages*/__manifest__.py")):
        manifest = read_manifest(addon.parent)
        if not manifest.get("installable", True):
            continue
        missing = [d for d in manifest.get("depends", []) if d not in known]
        if missing:
            say(f"skipping {addon.parent.name}: missing {', '.join(missing)}")
        else:
            selected.append(addon.parent.name)
    return selected


def addon_hash(addons):
    """Hash of what an upgrade (-u) loads: everything but the tests."""
    digest = hashlib.sha256()
    for addon in addons:
        base = ROOT / addon
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(base)
            if not path.is_file() or "tests" in rel.parts or "__pycache__" in rel.parts:
                continue
            digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Postgres:
    """The server Odoo uses: the one that answers, else a private cluster."""

    def __init__(self):
        self.params = {}  # psycopg2 / Odoo connection settings; {} = libpq env
        self.private = False
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
        self.private = True
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


def data_dir():
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "Odoo"  # Odoo's own default; filestores shared across checkouts


def write_config(src, pg):
    RUN_DIR.mkdir(exist_ok=True)
    lines = [
        "[options]",
        "addons_path = " + ",".join(str(p) for p in addons_path(src)),
        f"data_dir = {data_dir()}",
        "admin_passwd = admin",
        "max_cron_threads = 1",
        # local only by default; HTTP_INTERFACE=0.0.0.0 to reach it from elsewhere
        f"http_interface = {os.environ.get('HTTP_INTERFACE') or '127.0.0.1'}",
    ]
    for key, value in pg.params.items():
        lines.append(f"db_{key} = {value}")
    conf = RUN_DIR / "odoo.conf"
    tmp = conf.with_suffix(f".{os.getpid()}")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(conf)  # atomic: several make commands may run at once
    return conf


def odoo_cmd(src, conf, *args):
    return [sys.executable, str(src / "odoo-bin"), "-c", str(conf), *args]


def stamp_file(db):
    return RUN_DIR / "stamps" / f"{db}.sha256"


def ensure_db(src, pg, conf, db, addons, *, demo, fresh=False):
    """Create or update ``db`` so that ``addons`` are installed and current.

    Returns True when the database was (re)installed or upgraded.
    """
    stamp = stamp_file(db)
    if fresh:
        pg.drop_db(db)
        stamp.unlink(missing_ok=True)
    current = addon_hash(addons)
    args = []
    if pg.db_exists(db):
        states = pg.module_states(db, addons)
        if states is None or "base" not in states:
            raise Stop(
                f"database {db} exists but is not an Odoo database: "
                f"drop it (dropdb {db}) or choose another name"
            )
        base_version = states["base"][1] or ""
        if not base_version.startswith(SERIES + "."):
            raise Stop(
                f"database {db} was made by Odoo {base_version or '?'}, not {SERIES}: "
                f"drop it (dropdb {db}) or choose another name"
            )
        to_install = [a for a in addons if states.get(a, ("",))[0] != "installed"]
        to_update = [a for a in addons if a not in to_install]
        outdated = stamp.exists() is False or stamp.read_text().strip() != current
        for addon in to_update:
            manifest_version = read_manifest(ROOT / addon).get("version", "")
            if states[addon][1] != manifest_version:
                outdated = True
        if to_install:
            args += ["-i", ",".join(to_install)]
        if to_update and outdated:
            args += ["-u", ",".join(to_update)]
        if not args:
            return False
        say(
            f"database {db}: "
            + (f"installing {', '.join(to_install)} " if to_install else "")
            + (f"upgrading {', '.join(to_update)} " if "-u" in args else "")
            + "..."
        )
    else:
        say(
            f"creating database {db} with {', '.join(addons)}"
            + (" and demo data" if demo else "")
            + " ..."
        )
        args += ["-i", ",".join(addons)]
    if demo:
        args.append("--with-demo")
    started = time.monotonic()
    cmd = odoo_cmd(src, conf, "-d", db, *args, "--stop-after-init", "--no-http", "--log-level=warn")
    if subprocess.run(cmd, check=False).returncode:
        raise Stop(
            f"Odoo could not install/upgrade {', '.join(addons)} in {db} (see the log "
            "above). Fix the addon; if the database is broken, rerun on a fresh one "
            f"(dropdb {db})."
        )
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(current + "\n")
    say(f"database {db} ready in {time.monotonic() - started:.0f} s")
    return True


def ensure_admin_password(pg, db):
    """The demo database's documented login is admin/admin."""
    from passlib.hash import pbkdf2_sha512

    rows = pg.query("SELECT id, password FROM res_users WHERE login = 'admin'", dbname=db)
    if not rows:
        say(f"warning: database {db} has no 'admin' user")
        return
    uid, hashed = rows[0]
    try:
        valid = bool(hashed) and pbkdf2_sha512.verify("admin", hashed)
    except ValueError:
        valid = False
    if not valid:
        pg.query(
            "UPDATE res_users SET password = %s WHERE id = %s",
            (pbkdf2_sha512.hash("admin"), uid),
            dbname=db,
        )
        say("reset the password of 'admin' to 'admin'")


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
