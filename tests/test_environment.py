"""Community environment variables (hubext.environment)."""

from __future__ import annotations

from hubext.communities import parse_communities
from hubext.environment import environment_for

from .shared_data_kit import OCEAN, entry, ocean  # noqa: F401


def test_environment_is_normalized_and_first_community_wins():
    registry = parse_communities(
        {
            "ocean-lab": {
                "environment": {"SCRATCH_BUCKET": "gs://ocean/scratch", "EMPTY": ""}
            },
            "astro-101": {
                "environment": {"SCRATCH_BUCKET": "gs://astro", "_ASTRO": "1"}
            },
        }
    )
    assert registry["ocean-lab"].get("environment") == {
        "SCRATCH_BUCKET": "gs://ocean/scratch",
        "EMPTY": "",
    }
    communities = list(registry.values())
    assert environment_for(communities, {"astro-101", "ocean-lab"}) == {
        "SCRATCH_BUCKET": "gs://ocean/scratch",
        "EMPTY": "",
        "_ASTRO": "1",
    }
    assert environment_for(communities, ["astro-101"]) == {
        "SCRATCH_BUCKET": "gs://astro",
        "_ASTRO": "1",
    }
    assert environment_for(communities, []) == {}
