# Servers: one local process per user, in a per-user home, with server
# options per community. The profile_list is KubeSpawner's format; on
# Kubernetes the same list goes to c.KubeSpawner.profile_list
# (z2jh: singleuser.profileList).
c = get_config()  # noqa: F821

c.JupyterHub.spawner_class = "hubext-local"
c.LocalCommunitySpawner.home_root = "homes"
c.LocalCommunitySpawner.default_url = "/lab"


def env(**variables):
    """A profile override that sets environment variables."""
    return {"environment": variables}


def resources(cpu, memory, **variables):
    """A profile override: the CPUs and memory a server requests, and variables.

    On one machine nothing enforces them; the usage ledger records them (the
    usage page's CPU- and GiB-hours) and community limits count them
    (00-communities.py), as on Kubernetes.
    """
    return {"cpu_guarantee": cpu, "mem_guarantee": memory, **env(**variables)}


c.LocalCommunitySpawner.profile_list = [
    {
        # No allowed_groups: everyone may use it.
        "display_name": "Standard environment",
        "slug": "standard",
        "description": "JupyterLab with the hub's default software.",
        "kubespawner_override": resources(1, "2G", HUBEXT_PROFILE="standard"),
        "profile_options": {
            "threads": {
                "display_name": "Threads",
                "choices": {
                    "1": {
                        "display_name": "1 thread",
                        "kubespawner_override": resources(1, "2G", OMP_NUM_THREADS="1"),
                    },
                    "2": {
                        "display_name": "2 threads",
                        "kubespawner_override": resources(2, "4G", OMP_NUM_THREADS="2"),
                    },
                    "8": {
                        # Ocean Lab paid for the bigger machines.
                        "display_name": "8 threads (Ocean Lab)",
                        "allowed_groups": ["ocean-lab"],
                        "kubespawner_override": resources(
                            8, "16G", OMP_NUM_THREADS="8"
                        ),
                    },
                },
            },
        },
    },
    {
        "display_name": "Ocean model run",
        "slug": "ocean-model",
        "description": "For Ocean Modelling Lab members.",
        "allowed_groups": ["ocean-lab"],
        "kubespawner_override": resources(2, "8G", HUBEXT_PROFILE="ocean-model"),
        "profile_options": {
            "dataset": {
                "display_name": "Dataset",
                "choices": {
                    "sst": {
                        "display_name": "Sea surface temperature",
                        "kubespawner_override": env(DATASET="sst"),
                    },
                    "argo": {
                        "display_name": "Argo floats",
                        "kubespawner_override": env(DATASET="argo"),
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Another dataset (its name)",
                    "validation_regex": "[a-z0-9-]{1,40}",
                    "validation_message": "lowercase letters, digits and '-', at most 40",
                    "kubespawner_override": env(DATASET="{value}"),
                },
            },
        },
    },
    {
        "display_name": "Astronomy 101 workshop",
        "slug": "astro-workshop",
        "description": "The workshop's environment.",
        "allowed_groups": ["astro-101"],
        "kubespawner_override": resources(0.5, "1G", HUBEXT_PROFILE="astro-workshop"),
    },
]
