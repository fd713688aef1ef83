"""Golden files: whole expected values kept as JSON in tests/golden/.

A test compares what the code builds with its golden file, whole-value
equality: ``assert actual == golden("pod_storage", actual)``. A test run
only reads them.

To regenerate after an intended change, run the tests that use them with
``HUBEXT_UPDATE_GOLDEN=1`` and review the difference before committing::

    HUBEXT_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_shared_kube.py -k golden
    git diff tests/golden/
"""

from __future__ import annotations

import json
import os
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"
#: Set to 1 to write the golden files from what the code builds.
UPDATE_ENV = "HUBEXT_UPDATE_GOLDEN"


def golden(name: str, actual):
    """The expected value of ``tests/golden/<name>.json``.

    With ``HUBEXT_UPDATE_GOLDEN=1``, ``actual`` is written there first; it
    must be plain JSON data (dicts, lists, strings, numbers, booleans, None)
    so that the file says exactly what is compared.
    """
    path = GOLDEN / f"{name}.json"
    if os.environ.get(UPDATE_ENV) == "1":
        text = json.dumps(actual, indent=2, ensure_ascii=False) + "\n"
        assert json.loads(text) == actual, f"{name}: not plain JSON data"
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with {UPDATE_ENV}=1"
    return json.loads(path.read_text())
