from __future__ import annotations

import os
from pathlib import Path

import pytest
from kubernetes_asyncio.config import kube_config

from demo.services import PORT_RANGE_ENV, DemoEnvironment, port_range

from . import spawner_objects
from .harness import RunningHub
from .kube import NAMESPACE, running_cluster


def _worker_port_range() -> None:
    """Parallel workers (pytest-xdist) take ports from ranges of their own.

    Each worker, and every hub, proxy, provider and database it starts
    (they inherit the environment), picks free ports only in its slice of
    the range, so two workers never pick the same port at once.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2:
        return
    low, high = port_range()
    size = (high - low) // count
    index = int(worker[2:])
    os.environ[PORT_RANGE_ENV] = f"{low + index * size}-{low + (index + 1) * size}"


_worker_port_range()


@pytest.fixture(autouse=True)
def _real_processes_are_marked(request, monkeypatch):
    """A test that starts a real hub or the identity provider is marked e2e.

    ``-m "not e2e"`` then runs everything that needs no node packages, no
    free ports and no time; a test that starts them unmarked fails here
    rather than where node packages are missing.
    """
    if request.node.get_closest_marker("e2e") is not None:
        return
    for method in ("start_hub", "start_idp"):

        def refuse(*args, _method=method, **kwargs):
            raise AssertionError(
                f"{request.node.nodeid} starts a real process "
                f"(DemoEnvironment.{_method}): mark it with pytest.mark.e2e"
            )

        monkeypatch.setattr(DemoEnvironment, method, refuse)


@pytest.fixture(autouse=True)
def _hub_ledgers_end_with_the_test():
    """Ledgers that spawners made in this process during a test are closed after it.

    In a hub the ledger lives as long as the process (``hub_ledger``); a test
    that builds spawners in-process would otherwise leave a writer process
    running for the rest of the pytest worker, which other tests then see.
    """
    from hubext.spawners.usage import _ledgers

    before = set(_ledgers)
    yield
    for url in set(_ledgers) - before:
        _ledgers.pop(url).close(timeout=10)


#: A kubeconfig naming no reachable cluster: enough for KubeSpawner to be
#: built and to build pod manifests.
DUMMY_KUBECONFIG = Path(__file__).parent / "data" / "kubeconfig.yaml"


@pytest.fixture(autouse=True)
def hub_crypt_key(monkeypatch):
    """The environment a hub runs in has its auth_state key, as the demo's does:
    ``hubext check-config`` checks it (a test of a missing key removes it)."""
    key = os.urandom(32).hex()
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", key)
    return key


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory, request):
    """The demo configuration, running for real, shared by a test module."""
    hub = RunningHub(tmp_path_factory.mktemp("demo-hub")).start()
    yield hub
    hub.stop()
    if request.session.testsfailed:
        print(f"hub log: {hub.log_path}")


@pytest.fixture
def start_hub(tmp_path):
    """Start a hub with extra configuration: ``start_hub(extra_config, accounts=)``."""
    hubs = []

    def start(extra_config: str = "", **kwargs) -> RunningHub:
        hub = RunningHub(tmp_path / f"hub-{len(hubs)}", extra_config, **kwargs)
        hubs.append(hub)
        return hub.start()

    yield start
    for hub in hubs:
        hub.stop()


@pytest.fixture
async def cluster(tmp_path, caplog):
    """An in-memory Kubernetes API (kmock) with a fake kubelet, in NAMESPACE."""
    async with running_cluster(tmp_path, NAMESPACE) as cluster:
        yield cluster
    # KubeSpawner retries failed calls and watches, and only logs the errors:
    # a spawn that worked around the fake API server must not pass unnoticed.
    errors = [
        r.getMessage()
        for phase in ("setup", "call")
        for r in caplog.get_records(phase)
        if r.levelname == "ERROR"
    ]
    assert errors == []


@pytest.fixture
def kube_spawner_config(tmp_path, monkeypatch):
    """Build a CommunityKubeSpawner configuration of the test's own.

    ``kube_spawner_config(profiles, communities, on_cluster=False, **traits)``
    (``traits`` are KubeSpawner's; tests/spawner_objects.py): sessions go to
    a ledger in the test's ``tmp_path``. On the cluster (for tests that also
    take ``cluster``), the spawner works in NAMESPACE; off it, KubeSpawner
    loads :data:`DUMMY_KUBECONFIG` and can only build manifests.
    """

    def build(profiles, communities, *, on_cluster=False, **traits):
        if not on_cluster:
            # KubeSpawner loads the kubeconfig when it is built; the client
            # library read $KUBECONFIG when it was imported, so point its
            # default path here.
            monkeypatch.setattr(
                kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(DUMMY_KUBECONFIG)
            )
        return spawner_objects.kube_spawner_config(
            profiles,
            communities,
            ledger=tmp_path / "usage.sqlite",
            namespace=NAMESPACE if on_cluster else None,
            **traits,
        )

    return build


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for a test module (tests/browser_kit.py)."""
    from playwright.sync_api import sync_playwright

    from .browser_kit import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
