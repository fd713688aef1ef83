"""Kubernetes test support: an in-memory API server (kmock) and a fake kubelet.

See :mod:`tests.kube.kmock_cluster` for what is real and what is faked.
"""

# kmock (PyPI; Python >= 3.11) is in the test extra and required: no skipping.
from .kmock_cluster import (
    CORE_RESOURCES,
    KUBELET_FINALIZER,
    Cluster,
    FakeKubelet,
    KubeApiServer,
    as_sent,
    pod_container,
    running_cluster,
    stop_kubespawner_state,
    write_kubeconfig,
)

#: The namespace the Kubernetes tests use.
NAMESPACE = "hubext-test"

__all__ = [
    "CORE_RESOURCES",
    "KUBELET_FINALIZER",
    "NAMESPACE",
    "Cluster",
    "FakeKubelet",
    "KubeApiServer",
    "as_sent",
    "pod_container",
    "running_cluster",
    "stop_kubespawner_state",
    "write_kubeconfig",
]
