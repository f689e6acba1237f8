"""pytest glue for the cluster tests: binary options, the `cluster` fixture,
and every node's log printed under a failing test's report."""

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Cluster  # noqa: E402

HERE = Path(__file__).resolve().parent


def _default_bin(name):
    build = os.environ.get("RINGKV_BUILD")
    base = Path(build) / "src" if build else HERE / ".." / ".." / "build" / "release" / "src"
    return str((base / name).resolve())


def pytest_addoption(parser):
    group = parser.getgroup("ringkv")
    group.addoption("--ringkvd", default=None,
                    help="ringkvd binary (default: $RINGKV_BUILD/src/ringkvd or build/release/src/ringkvd)")
    group.addoption("--kvctl", default=None,
                    help="kvctl binary (default: $RINGKV_BUILD/src/kvctl or build/release/src/kvctl)")


@pytest.fixture(scope="session")
def binaries(pytestconfig):
    found = {}
    for name in ("ringkvd", "kvctl"):
        path = pytestconfig.getoption(name) or _default_bin(name)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            pytest.fail(f"{name} binary not found at {path}: build first, or pass --{name}=PATH "
                        f"or set RINGKV_BUILD=<build dir>", pytrace=False)
        found[name] = str(Path(path).resolve())
    return found


@pytest.fixture
def cluster(request, tmp_path, binaries):
    """A Cluster in this test's tmp_path; every process it started is killed
    at teardown. Logs stay in tmp_path; the nodes' data dirs too when the
    test failed (preallocated segments make a passing suite's data dirs
    gigabytes otherwise)."""
    c = Cluster(tmp_path, binaries["ringkvd"], binaries["kvctl"])
    request.node._ringkv_clusters = getattr(request.node, "_ringkv_clusters", []) + [c]
    yield c
    c.cleanup()
    if not getattr(request.node, "_ringkv_failed", False):
        for node in c.nodes:
            shutil.rmtree(node.data_dir, ignore_errors=True)
    found = c.sanitizer_reports()
    if found:
        pytest.fail("sanitizer reports in the ringkvd logs:\n" + "\n".join(found[:20]), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    item._ringkv_failed = True
    for c in getattr(item, "_ringkv_clusters", []):
        if c.nodes:
            rep.sections.append((f"ringkvd logs ({rep.when})", c.logs_report()))
