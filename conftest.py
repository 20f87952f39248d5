"""pytest hooks of the deal_stages checkout (used by `make test`).

- Tours (tests that drive Chromium through HttpCase.browser_js/start_tour) are
  listed after the run with the browser used, so a log proves they ran.
- A tour that is skipped - no Chromium, no websocket-client - fails the run
  when CI=true and is a visible warning otherwise: Odoo skips tours silently,
  which would let CI pass without testing the UI.
- TEST_PORT pins the HTTP port pytest-odoo serves the tours on (it otherwise
  picks a free one, which is what concurrent runs in several worktrees need).
"""

import os
import weakref

import pytest

if os.environ.get("TEST_PORT"):
    import pytest_odoo

    pytest_odoo._get_available_random_port = lambda: int(os.environ["TEST_PORT"])

_browser_users = weakref.WeakSet()  # test instances that started a browser
_skipped_tours = []
_run_tours = []


def pytest_configure(config):
    try:
        from odoo.tests import HttpCase
    except ImportError:
        return
    original = HttpCase.browser_js

    def browser_js(self, *args, **kwargs):
        _browser_users.add(self)
        return original(self, *args, **kwargs)

    HttpCase.browser_js = browser_js  # start_tour goes through it too


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if getattr(item, "instance", None) in _browser_users:
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            _skipped_tours.append(f"{item.nodeid}: {reason}")
        elif report.when == "call":
            _run_tours.append(f"{item.nodeid} {report.outcome}")
    return report


def _strict():
    return os.environ.get("CI", "").lower() == "true"


def pytest_sessionfinish(session, exitstatus):
    if _skipped_tours and _strict() and exitstatus in (0, 5):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _browser():
    try:
        from odoo.tests.common import _find_executable

        return _find_executable()
    except Exception:  # noqa: BLE001 - unittest.SkipTest when there is none
        return "no browser found"


def pytest_terminal_summary(terminalreporter):
    if _run_tours:
        terminalreporter.section(f"tours run in {_browser()}")
        for line in _run_tours:
            terminalreporter.line(line)
    if not _skipped_tours:
        return
    level = "ERROR (CI=true)" if _strict() else "WARNING"
    terminalreporter.section(
        f"{level}: browser tours were skipped", red=_strict(), yellow=not _strict()
    )
    for line in _skipped_tours:
        terminalreporter.line(line)
    terminalreporter.line("Install Chromium (apt-get install chromium) and websocket-client.")
