"""An in-memory Kubernetes cluster for KubeSpawner tests: kmock plus a fake kubelet.

What is real:

- the HTTP wire: KubeSpawner's ``kubernetes_asyncio`` client (its own
  ``CoreV1Api``, reflectors and watches) talks JSON over TCP to a server on
  127.0.0.1, configured through a kubeconfig file like on a real hub;
- the API server's storage and watch streams: kmock's ``KubernetesEmulator``
  (https://pypi.org/project/kmock/) keeps objects in memory and streams
  ``ADDED`` / ``MODIFIED`` / ``DELETED`` events to every watcher.

What is faked, and why:

- :class:`KubeApiServer` adds to kmock the few things a real API server does
  and KubeSpawner relies on (kmock leaves them out on purpose: it is a generic
  emulator):

  * the built-in resource list (pods, events, PVCs, secrets, services...) is
    loaded, so listing a resource that has no object yet is a 200, not a 404;
  * ``?watch=True`` (what ``kubernetes_asyncio`` sends: it URL-encodes the
    Python ``True``) is a watch, as for the real server, which parses the
    flag like Go's ``strconv.ParseBool``; kmock only knows ``watch=true``;
  * on create, the server fills ``metadata.namespace``, ``uid``,
    ``resourceVersion`` and ``creationTimestamp`` (KubeSpawner's reflectors
    read ``namespace`` and ``resourceVersion`` of every object), and a new pod
    gets ``status.phase: Pending``; every change bumps ``resourceVersion``;
  * a pod delete records ``deletionGracePeriodSeconds``; kmock itself turns a
    delete of an object with finalizers into a graceful one
    (``deletionTimestamp`` set, ``MODIFIED``), and removes the object when
    the last finalizer goes (``DELETED``).

- :class:`FakeKubelet` plays the scheduler and the kubelet, as a client of the
  API server over HTTP (a watch and PATCHes, like the real ones): a new pod is
  bound to a node, held by a finalizer while it "runs" (that is how graceful
  deletion is modelled in kmock), and set ``Running`` with ``podIP``
  127.0.0.1 and ready ``containerStatuses``; a pod being deleted is let go
  after its grace period (capped, to keep tests fast). No container runs.

:func:`running_cluster` starts both, points ``kubernetes_asyncio``'s default
kubeconfig at them and undoes everything KubeSpawner leaves behind
(process-wide reflectors, shared API clients, the cached client
configuration), so that tests do not see each other's cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import uuid
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import attrs
import kmock
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config import kube_config
from kubespawner import KubeSpawner, clients

PODS = kmock.resource("v1/pods")

#: The core v1 resources KubeSpawner lists, watches, creates or deletes.
CORE_RESOURCES = ("pods", "events", "persistentvolumeclaims", "secrets", "services")

#: The finalizer the fake kubelet holds on a pod it runs (see FakeKubelet).
KUBELET_FINALIZER = "kmock-cluster.test/kubelet"

#: Watch flag values that Go's strconv.ParseBool reads as true.
_TRUE = {"1", "t", "T", "true", "TRUE", "True"}

#: Fields the API server sets; strip them to get back what a client sent.
SERVER_METADATA = ("uid", "resourceVersion", "creationTimestamp", "namespace")


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, UTC, seconds)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_sent(obj: dict) -> dict:
    """A stored object without what the server and kubelet added to it."""
    obj = json.loads(json.dumps(dict(obj)))
    obj.pop("status", None)
    metadata = obj.get("metadata", {})
    for key in (*SERVER_METADATA, "finalizers", "deletionGracePeriodSeconds"):
        metadata.pop(key, None)
    obj.get("spec", {}).pop("nodeName", None)
    return obj


@attrs.define(kw_only=True)
class KubeApiServer(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator, with what a real API server adds (see module doc).

    kmock's docs point to subclassing the emulator for special fields. The
    hooks are ``__call__`` (the aiohttp entry point) and ``_handle`` (which
    the emulator itself overrides, the same way, to keep its objects): the
    request and the stored objects are changed through kmock's public
    ``Request.data`` and ``objects``, just before kmock stores or emits them.
    Nothing in kmock is monkeypatched.
    """

    #: The last resourceVersion given (one counter for all objects, as etcd's).
    version: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # kmock ships the resource list of a recent k3s; without it, a list
        # of a resource with no object yet (events, PVCs...) is a 404.
        with warnings.catch_warnings():
            # kmock 0.8 reads it with importlib.resources.read_binary (deprecated)
            warnings.simplefilter("ignore", DeprecationWarning)
            self.resources.load_bundled()
        missing = [r for r in CORE_RESOURCES if f"v1/{r}" not in self.resources]
        if missing:  # pragma: no cover - a kmock without its bundled list
            raise RuntimeError(f"kmock's bundled resources lack core v1 {missing}")

    def next_version(self) -> str:
        self.version += 1
        return str(self.version)

    async def __call__(self, raw_request):
        # kubernetes_asyncio sends the watch flag as "True"; kmock only sees a
        # watch in "true" (and would answer a plain, finished list instead).
        flag = raw_request.query.get("watch")
        if flag in _TRUE and flag != "true":
            url = raw_request.rel_url.update_query(watch="true")
            raw_request = raw_request.clone(rel_url=url)
        return await super().__call__(raw_request)

    async def _handle(self, request: kmock.Request):
        # kmock stores request.data as the object (create) or merges it in
        # (patch): server-side fields go into it before kmock does so.
        action = request.action
        data = request.data
        if request.resource is not None and isinstance(data, dict):
            if action == kmock.action.CREATE:
                self._admit(request, data)
            elif action == kmock.action.UPDATE and request.name:
                data.setdefault("metadata", {})["resourceVersion"] = self.next_version()
        if request.resource is not None and action == kmock.action.DELETE:
            self._mark_deleting(request)
        return await super()._handle(request)

    def _admit(self, request: kmock.Request, obj: dict) -> None:
        metadata = obj.setdefault("metadata", {})
        if request.namespace:
            metadata.setdefault("namespace", request.namespace)
        metadata["uid"] = str(uuid.uuid4())
        metadata["resourceVersion"] = self.next_version()
        metadata["creationTimestamp"] = now()
        if request.resource == PODS:
            obj.setdefault("status", {}).setdefault("phase", "Pending")

    def _mark_deleting(self, request: kmock.Request) -> None:
        key = (request.resource, request.namespace, request.name)
        if request.name is None or key not in self.objects:
            return
        obj = self.objects[key]
        if obj.deleted or "deletionTimestamp" in obj.raw.get("metadata", {}):
            return  # kmock answers 404, or leaves a terminating object alone
        metadata = dict(obj.raw.get("metadata", {}))
        metadata["resourceVersion"] = self.next_version()
        if request.resource == PODS:
            metadata["deletionGracePeriodSeconds"] = _grace_period(request, obj.raw)
        # Changes the current version in place: kmock's own delete handling,
        # right after this, makes the next version (or the deletion) from it.
        obj["metadata"] = metadata


def _grace_period(request: kmock.Request, pod: dict) -> int:
    """The grace period of a pod delete, as the API server picks it."""
    if "gracePeriodSeconds" in request.params:
        return int(request.params["gracePeriodSeconds"])
    body = request.data if isinstance(request.data, dict) else {}
    if body.get("gracePeriodSeconds") is not None:
        return int(body["gracePeriodSeconds"])
    return int(pod.get("spec", {}).get("terminationGracePeriodSeconds", 30))


@dataclass
class FakeKubelet:
    """Runs pods the way KubeSpawner waits for them, through the API server.

    It watches all pods; for each new pod it binds the pod to ``node_name``
    and adds :data:`KUBELET_FINALIZER` (one PATCH, as the scheduler and
    kubelet would), then reports it ``Running`` with ``pod_ip`` and ready
    containers (a PATCH of ``status``). When a pod it runs gets a
    ``deletionTimestamp``, it waits for the pod's grace period, at most
    ``max_grace`` seconds, and drops the finalizer, so the API server removes
    the pod. ``started`` / ``stopped`` name the pods (``namespace/name``) it
    has run and let go, in order; ``errors`` are its own failures (a bug in
    this fake), collected by :meth:`stop`.
    """

    api: kmock.KubernetesEmulator
    node_name: str = "kmock-node"
    pod_ip: str = "127.0.0.1"
    max_grace: float = 2.0
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _watch_task: asyncio.Task | None = None
    #: (uid, "run" or "kill") -> the task doing it
    _tasks: dict[tuple[str, str], asyncio.Task] = field(default_factory=dict)
    _watching: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, timeout: float = 5) -> None:
        self._watch_task = asyncio.create_task(self._watch(), name="fake-kubelet")
        await asyncio.wait_for(self._watching.wait(), timeout)

    async def stop(self) -> None:
        tasks = [t for t in (self._watch_task, *self._tasks.values()) if t]
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        self.errors += [
            r
            for r in results
            if isinstance(r, BaseException)
            and not isinstance(r, asyncio.CancelledError)
        ]
        self._watch_task = None
        self._tasks.clear()

    async def _watch(self) -> None:
        # kmock's own aiohttp client for its server; cancelled by stop().
        async with self.api.get("/api/v1/pods", params={"watch": "true"}) as resp:
            resp.raise_for_status()
            self._watching.set()
            async for line in resp.content:
                if line.strip():
                    self._on_event(json.loads(line))

    def _on_event(self, event: dict) -> None:
        pod = event["object"]
        metadata = pod["metadata"]
        uid = metadata["uid"]
        if event["type"] == "DELETED":
            return
        if "deletionTimestamp" in metadata:
            work, handler = (uid, "kill"), self._kill
            if KUBELET_FINALIZER not in metadata.get("finalizers", []):
                return  # not bound yet: the API server removes it itself
        else:
            work, handler = (uid, "run"), self._run
        if work not in self._tasks:
            name = f"kubelet {work[1]} {metadata['namespace']}/{metadata['name']}"
            self._tasks[work] = asyncio.create_task(handler(pod), name=name)

    @staticmethod
    def _path(pod: dict, subresource: str = "") -> str:
        metadata = pod["metadata"]
        path = f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}"
        return f"{path}/{subresource}" if subresource else path

    async def _patch(self, path: str, patch: dict) -> bool:
        headers = {"Content-Type": "application/merge-patch+json"}
        async with self.api.patch(path, json=patch, headers=headers) as resp:
            if resp.status == 404:  # deleted meanwhile
                return False
            resp.raise_for_status()
            return True

    async def _run(self, pod: dict) -> None:
        bound = await self._patch(
            self._path(pod),
            {
                "metadata": {"finalizers": [KUBELET_FINALIZER]},
                "spec": {"nodeName": self.node_name},
            },
        )
        if not bound:
            return
        started = now()
        status = {
            "phase": "Running",
            "hostIP": self.pod_ip,
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": started,
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": started}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "imageID": "",
                    "containerID": f"kmock://{pod['metadata']['uid']}/{c['name']}",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": started}},
                }
                for c in pod["spec"]["containers"]
            ],
        }
        if await self._patch(self._path(pod, "status"), {"status": status}):
            self.started.append(_ref(pod))

    async def _kill(self, pod: dict) -> None:
        grace = pod["metadata"].get("deletionGracePeriodSeconds", 30)
        await asyncio.sleep(min(float(grace), self.max_grace))
        others = [
            f for f in pod["metadata"].get("finalizers", []) if f != KUBELET_FINALIZER
        ]
        # A merge patch replaces lists whole; null drops the key.
        if await self._patch(
            self._path(pod), {"metadata": {"finalizers": others or None}}
        ):
            self.stopped.append(_ref(pod))


def _ref(obj: dict) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


@dataclass
class Cluster:
    """A running :class:`KubeApiServer` and :class:`FakeKubelet`."""

    api: KubeApiServer
    kubelet: FakeKubelet
    url: str
    kubeconfig: Path

    def objects(self, plural: str, namespace: str | None = None) -> dict[str, dict]:
        """Stored objects of a core v1 resource (not deleted), by name."""
        resource = kmock.resource(f"v1/{plural}")
        return {
            name: obj.raw
            for (res, ns, name), obj in self.api.objects.items()
            if res == resource
            and (namespace is None or ns == namespace)
            and not obj.deleted
        }

    def server_errors(self) -> list[BaseException]:
        """Errors inside the API server (not Kubernetes answers) or the kubelet."""
        api_errors = [
            e for e in self.api.errors if not isinstance(e, kmock.KubernetesError)
        ]
        return api_errors + self.kubelet.errors

    def requests(self, action: str, plural: str) -> list[kmock.Request]:
        """Requests the API server got, e.g. ``requests("create", "pods")``."""
        view = self.api[kmock.action[action.upper()], kmock.resource(f"v1/{plural}")]
        return list(view)


def write_kubeconfig(path: Path, url: str, namespace: str) -> Path:
    """A kubeconfig for ``url`` with a dummy bearer token (JSON is YAML)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": url}}],
        "users": [{"name": "hub", "user": {"token": "kmock-test-token"}}],
        "contexts": [
            {
                "name": "kmock",
                "context": {"cluster": "kmock", "user": "hub", "namespace": namespace},
            }
        ],
        "current-context": "kmock",
    }
    path.write_text(json.dumps(config, indent=2))
    return path


async def stop_kubespawner_state(timeout: float = 10) -> None:
    """Stop what KubeSpawner keeps per process: reflectors and shared clients.

    KubeSpawner's reflectors are shared by all spawners (a class attribute,
    also for subclasses): ``_stop_all_reflectors`` is KubeSpawner's own helper
    for tests. Its API clients are cached per event loop
    (``kubespawner.clients._client_cache``), each with a task that closes the
    client when cancelled, as JupyterHub cancels all tasks at shutdown. Doing
    the same here closes the connections, so the API server stops at once.
    """
    await asyncio.wait_for(KubeSpawner._stop_all_reflectors(), timeout)
    current = asyncio.current_task()
    closers = [
        task
        for task in asyncio.all_tasks()
        if task is not current
        and "close_client_task" in getattr(task.get_coro(), "__qualname__", "")
    ]
    for task in closers:
        task.cancel()
    if closers:
        await asyncio.wait(closers, timeout=timeout)
    loop = asyncio.get_running_loop()
    for key, client in list(clients._client_cache.items()):
        if key[0] is loop:  # no closing task (any more): close it here
            clients._client_cache.pop(key, None)
            await client.api_client.close()


@contextlib.asynccontextmanager
async def running_cluster(
    workdir: Path, namespace: str = "default", *, max_grace: float = 2.0
) -> AsyncIterator[Cluster]:
    """Start the API server and kubelet; point KubeSpawner's kubeconfig at them.

    KubeSpawner loads the client configuration once per process
    (``kubespawner.clients.load_config`` is an ``lru_cache``) from
    ``kubernetes_asyncio``'s default kubeconfig path, a module global read
    when that module was imported. Both are set for the cluster and restored
    afterwards, with the client library's default ``Configuration``.

    On a clean exit, an error inside the API server (kmock answers it with a
    500 and keeps it) or the kubelet fails the block; Kubernetes errors such
    as 404 and 409 are answers, not failures.
    """
    saved_location = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    saved_configuration = Configuration.get_default_copy()
    api = KubeApiServer()
    async with api, kmock.Server(api) as server:
        url = str(server.url).rstrip("/")
        kubeconfig = write_kubeconfig(workdir / "kubeconfig.json", url, namespace)
        cluster = Cluster(api, FakeKubelet(api, max_grace=max_grace), url, kubeconfig)
        await stop_kubespawner_state()
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
        clients.load_config.cache_clear()
        try:
            await cluster.kubelet.start()
            yield cluster
        finally:
            try:
                await stop_kubespawner_state()
            finally:
                await cluster.kubelet.stop()
                kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved_location
                clients.load_config.cache_clear()
                Configuration.set_default(saved_configuration)
        errors = cluster.server_errors()
        if errors:
            raise AssertionError(f"the fake cluster failed: {errors!r}") from errors[0]


def pod_container(pod: dict[str, Any], name: str = "notebook") -> dict[str, Any]:
    """The named container of a pod object."""
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)
