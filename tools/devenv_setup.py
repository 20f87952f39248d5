"""Phase 1 of ``tools/devenv.py``: the Odoo 19.0 source and the virtualenv.

Standard library only: this runs with any ``python3``, before the virtualenv
exists (nothing of Odoo, psycopg2 or the project's requirements is importable).
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from devenv_common import ROOT, SERIES, Stop, say, venv_dir, venv_python

CONSTRAINTS = ROOT / "tools" / "pip-constraints.txt"
PROJECT_REQUIREMENTS = [ROOT / "requirements.txt", ROOT / "requirements-dev.txt"]
ARCHIVE_URL = os.environ.get(
    "ODOO_ARCHIVE_URL",
    f"https://github.com/odoo/odoo/archive/refs/heads/{SERIES}.tar.gz",
)
# Bump when the way the venv is built changes, to force a re-install.
VENV_RECIPE = "1"


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "deal_stages"


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
