"""The culler's policies at each pass: the idle timeouts communities' admins stored.

The culler reads the delegated state itself, read-only, once per pass
(:meth:`hubext.culler.app.Culler.current_policies`); the end-to-end test
with a real hub and real servers is in tests/test_delegated_local.py. Here:
the store on SQLite as the hub writes it, and one that cannot be reached.
"""

from __future__ import annotations

import logging

from hubext.communities import parse_communities
from hubext.console.store import StateStore
from hubext.culler.app import Culler, bounds_of, policies_of

COMMUNITIES = parse_communities(
    {
        "ocean-lab": {
            "culling": {"idle_timeout": 1800, "max_age": 86400},
            "self_service": {"idle_timeout": {"min": 900, "max": 7200}},
        },
        "astro-101": {"self_service": {"idle_timeout": {"min": 600, "max": 3600}}},
        "bio": {"culling": {"idle_timeout": 600}},
    }
)


def culler_of(url: str) -> Culler:
    culler = Culler(
        url="http://127.0.0.1:1/hub/api",
        api_token="culler-token-Hg41Vx9q",
        state_db_url=url,
        log=logging.getLogger("hubext.culler.test"),
    )
    culler.policies = policies_of(COMMUNITIES)
    culler.bounds = bounds_of(COMMUNITIES)
    return culler


def store(url: str, community: str, document: dict) -> None:
    state = StateStore.open(url)
    try:
        version = state.read(community).version
        state.change(
            community,
            version,
            document,
            actor="olga",
            actor_kind="user",
            action="idle_timeout.set",
        )
    finally:
        state.close()


async def test_each_pass_reads_what_the_admins_stored_within_the_bounds(
    tmp_path, caplog
):
    url = f"sqlite:///{tmp_path / 'hubext-state.sqlite'}"
    store(url, "ocean-lab", {"idle_timeout": 7200})
    culler = culler_of(url)
    assert set(culler.bounds) == {"ocean-lab", "astro-101"}
    with caplog.at_level(logging.INFO):
        policies = await culler.current_policies()
    assert policies == {
        "ocean-lab": {"idle_timeout": 7200, "max_age": 86400},
        "bio": {"idle_timeout": 600},
    }
    assert "hubext-culler: ocean-lab's idle timeout is now 7200 s" in caplog.text

    # astro-101's admins set theirs; ocean-lab's bounds no longer allow its own
    store(url, "astro-101", {"idle_timeout": 3600})
    culler.bounds = bounds_of(
        parse_communities(
            {
                "ocean-lab": {
                    "self_service": {"idle_timeout": {"min": 900, "max": 3600}}
                },
                "astro-101": {
                    "self_service": {"idle_timeout": {"min": 600, "max": 3600}}
                },
            }
        )
    )
    caplog.clear()
    with caplog.at_level(logging.INFO):
        policies = await culler.current_policies()
        await culler.current_policies()
    assert policies == {
        "ocean-lab": {"idle_timeout": 1800, "max_age": 86400},
        "astro-101": {"idle_timeout": 3600},
        "bio": {"idle_timeout": 600},
    }
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "hubext-culler: ocean-lab's settings.idle_timeout: 7200 s is outside 900 s "
        "to 3600 s: not applied"
    ]
    # the configuration's policies are not changed by a pass
    assert culler.policies["ocean-lab"] == {"idle_timeout": 1800, "max_age": 86400}


async def test_a_state_it_cannot_read_leaves_the_last_policies_and_no_password(
    tmp_path, caplog
):
    url = f"sqlite:///{tmp_path / 'hubext-state.sqlite'}"
    store(url, "ocean-lab", {"idle_timeout": 7200})
    culler = culler_of(url)
    read = await culler.current_policies()
    assert read["ocean-lab"]["idle_timeout"] == 7200

    culler.state_db_url = (
        "postgresql+psycopg://hubext:pw-Mn27Lp0x@127.0.0.1:9/state?connect_timeout=2"
    )
    with caplog.at_level(logging.INFO):
        for _ in range(2):
            assert await culler.current_policies() == read
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        "hubext-culler: cannot read the communities' stored settings at "
        "postgresql+psycopg://hubext:***@127.0.0.1:9/state?connect_timeout=2 "
        "(OperationalError: "
    )
    assert "pw-Mn27Lp0x" not in caplog.text

    # never read: the configured policies
    fresh = culler_of(culler.state_db_url)
    assert await fresh.current_policies() == policies_of(COMMUNITIES)
