# Communities: the one place they are defined. Every other hubext plugin
# reads them from here. In zero-to-jupyterhub this is
# hub.config.Communities.communities in values.yaml.
c = get_config()  # noqa: F821

c.Communities.communities = {
    "ocean-lab": {
        "display_name": "Ocean Modelling Lab",
        "default_profile": "ocean-model",
        # Members: anyone the demo provider puts in the ocean-lab group.
        "members": [{"provider": "demo", "group": "ocean-lab"}],
        "admins": [{"provider": "demo", "group": "ocean-lab-admins"}],
    },
    "astro-101": {
        "display_name": "Astronomy 101 (workshop)",
        "default_profile": "astro-workshop",
        "members": [
            {"provider": "demo", "group": "astro-101"},
            # and anyone with a verified email at the university
            {"provider": "demo", "email_domain": "astro.example.edu"},
        ],
    },
}
