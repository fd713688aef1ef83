# Communities: the one place they are defined. Every other hubext plugin
# reads them from here. In zero-to-jupyterhub this is
# hub.config.Communities.communities in values.yaml.
c = get_config()  # noqa: F821

c.Communities.communities = {
    "ocean-lab": {
        "display_name": "Ocean Modelling Lab",
    },
    "astro-101": {
        "display_name": "Astronomy 101 (workshop)",
    },
}
