# Communities: the one place they are defined. Every other hubext plugin
# reads them from here. In zero-to-jupyterhub this is
# hub.config.Communities.communities in values.yaml.
import os

c = get_config()  # noqa: F821

# Where the demo keeps the shared folders' data (host_path sources: on one
# machine they are directories, linked into each member's home). On
# Kubernetes the sources are NFS exports or PVCs: docs/how-to/shared-data.md.
# Real paths (no links): a hub run as root never follows a link to them.
# The clone may be anywhere, /root/... included (host paths may lie there).
repo = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
shared = os.path.join(
    os.path.realpath(
        os.environ.get("HUBEXT_DEMO_DIR", os.path.join(repo, ".hubext-demo"))
    ),
    "shared",
)

c.Communities.communities = {
    "ocean-lab": {
        "display_name": "Ocean Modelling Lab",
        "default_profile": "ocean-model",
        # Culler: stop servers idle for 30 minutes (short, for the demo).
        "culling": {"idle_timeout": 30 * 60},
        # Members: anyone the demo provider puts in the ocean-lab group.
        "members": [{"provider": "demo", "group": "ocean-lab"}],
        "admins": [{"provider": "demo", "group": "ocean-lab-admins"}],
        # Members read the datasets; the lab's admins curate them. The demo
        # runs every server as one system user, so this is not enforced here
        # (it is with run_as_system_users and on Kubernetes).
        "shared_data": [
            {
                "name": "datasets",
                "mount_path": "/home/jovyan/shared/ocean-lab/datasets",
                "source": {"host_path": f"{shared}/ocean-lab/datasets"},
                "members": "read-only",
                "admins": "read-write",
            },
        ],
        # A variable for the members' servers, e.g. their scratch bucket.
        "environment": {"SCRATCH_BUCKET": "s3://demo-scratch/ocean-lab"},
        # The lab's servers together request at most 16 CPUs and 64 GiB
        # (each profile's requests: 20-spawner.py). The spawn form shows
        # what is left; a start past it is refused.
        "limits": {"max_cpu": 16, "max_memory": "64G"},
    },
    "astro-101": {
        "display_name": "Astronomy 101 (workshop)",
        "default_profile": "astro-workshop",
        # A workshop: servers idle for 5 minutes, or running 8 hours, are stopped.
        "culling": {"idle_timeout": 5 * 60, "max_age": 8 * 3600},
        "members": [
            {"provider": "demo", "group": "astro-101"},
            # and anyone with a verified email at the university
            {"provider": "demo", "email_domain": "astro.example.edu"},
        ],
        # One server per participant, and a small monthly budget: 100
        # server-hours for the workshop, 10 per participant (counted from
        # the usage ledger; the usage page shows what was used).
        "limits": {
            "max_servers_per_member": 1,
            "budget": {"server_hours": 100, "per_member": {"server_hours": 10}},
        },
        # The workshop's common folder: every participant writes.
        "shared_data": [
            {
                "name": "workshop",
                "mount_path": "/home/jovyan/shared/astro-101/workshop",
                "source": {"host_path": f"{shared}/astro-101/workshop"},
                "members": "read-write",
            },
        ],
    },
}
