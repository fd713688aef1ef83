"""The hubext demo hub: loads jupyterhub_config.d/*.py in sorted order.

Run it with `make demo`. Each numbered snippet is what a hub admin copies
into their own configuration; 90-demo-machine.py holds the settings that only
make sense for the one-machine demo.
"""

import glob
import os

here = os.path.dirname(os.path.abspath(__file__))
for snippet in sorted(glob.glob(os.path.join(here, "jupyterhub_config.d", "*.py"))):
    load_subconfig(snippet)  # noqa: F821 (injected by traitlets)
