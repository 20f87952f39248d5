"""Shared by every part of the development environment (``tools/devenv*.py``).

Standard library only: phase 1 of ``tools/devenv.py`` imports it with any
``python3``, before the virtualenv exists.
"""

import os
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"
PGDATA_DIR = ROOT / ".pgdata"
SERIES = "19.0"


class Stop(Exception):
    """A failure the user can fix; the message says what and how."""


def say(msg):
    print(f"[devenv] {msg}", flush=True)


def venv_dir():
    return Path(os.path.abspath(os.environ.get("VENV") or ROOT / ".venv"))


def venv_python():
    return venv_dir() / "bin" / "python"


def data_dir():
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "Odoo"  # Odoo's own default; filestores shared across checkouts


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
