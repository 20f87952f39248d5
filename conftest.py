"""pytest hooks of the deal_stages checkout (used by `make test`).

- A browser test (HttpCase) that is skipped - no Chromium, no websocket-client -
  fails the run when CI=true and is a visible warning otherwise: Odoo skips
  tours silently, which would let CI pass without testing the UI.
- TEST_PORT pins the HTTP port pytest-odoo serves the tours on (it otherwise
  picks a free one, which is what concurrent runs in several worktrees need).
"""

import os

import pytest

if os.environ.get("TEST_PORT"):
    import pytest_odoo

    pytest_odoo._get_available_random_port = lambda: int(os.environ["TEST_PORT"])

_skipped_browser_tests = []
_run_browser_tests = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.skipped and _is_http_case(item):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        _skipped_browser_tests.append(f"{item.nodeid}: {reason}")
    elif report.when == "call" and _is_http_case(item):
        _run_browser_tests.append(f"{item.nodeid} {report.outcome}")
    return report


def _is_http_case(item):
    try:
        from odoo.tests import HttpCase
    except ImportError:
        return False
    return isinstance(getattr(item, "instance", None), HttpCase)


def _strict():
    return os.environ.get("CI", "").lower() == "true"


def pytest_sessionfinish(session, exitstatus):
    if _skipped_browser_tests and _strict() and exitstatus in (0, 5):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _browser():
    try:
        from odoo.tests.common import _find_executable

        return _find_executable()
    except Exception:  # noqa: BLE001 - unittest.SkipTest when there is none
        return "no browser found"


def pytest_terminal_summary(terminalreporter):
    if _run_browser_tests:
        # shown so a log proves the tours really ran in a browser
        terminalreporter.section(f"browser tests run in {_browser()}")
        for line in _run_browser_tests:
            terminalreporter.line(line)
    if not _skipped_browser_tests:
        return
    level = "ERROR (CI=true)" if _strict() else "WARNING"
    terminalreporter.section(
        f"{level}: browser tests were skipped", red=_strict(), yellow=not _strict()
    )
    for line in _skipped_browser_tests:
        terminalreporter.line(line)
    terminalreporter.line("Install Chromium (apt-get install chromium) and websocket-client.")
