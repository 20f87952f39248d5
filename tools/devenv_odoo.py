"""Odoo's side of the development environment (``tools/devenv.py``, phase 2).

The project's addons, the Odoo config file of the checkout (``.run/odoo.conf``)
and the databases made with odoo-bin: created, installed or upgraded when an
addon changed (a hash of what an upgrade loads, kept in ``.run/stamps/``).
"""

import ast
import hashlib
import os
import subprocess
import sys
import time

from devenv_common import ROOT, RUN_DIR, SERIES, Stop, data_dir, say


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
