# Communities: the one place they are defined. Every other hubext plugin
# reads them from here. In zero-to-jupyterhub this is
# hub.config.Communities.communities in values.yaml.
c = get_config()  # noqa: F821

c.Communities.communities = {
    "ocean-lab": {
        "display_name": "Ocean Modelling Lab",
        "default_profile": "ocean-model",
        # Culler: stop servers idle for 30 minutes (short, for the demo).
        "culling": {"idle_timeout": 30 * 60},
        # Members: anyone the demo provider puts in the ocean-lab group.
        "members": [{"provider": "demo", "group": "ocean-lab"}],
        "admins": [{"provider": "demo", "group": "ocean-lab-admins"}],
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
    },
}
