"""The providers' outage back-off on its injectable clock (no waiting).

The real-hub tests (tests/test_identity_providers.py, test_identity_oidc.py)
check the wiring: a refresh during an outage keeps memberships and the
provider is left alone until the back-off is over.
"""

from __future__ import annotations

import pytest

from hubext._validation import ConfigError
from hubext.authenticator import CommunityAuthenticator
from hubext.providers import GitHubProvider, ProviderUnavailable


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider(clock, **traits) -> GitHubProvider:
    return GitHubProvider(provider_name="github", outage_clock=clock, **traits)


def outage(retry_after=None) -> ProviderUnavailable:
    return ProviderUnavailable("github", "HTTP 502 while fetching", retry_after)


def test_backoff_doubles_up_to_its_maximum_on_the_clock():
    clock = Clock()
    github = provider(clock, outage_backoff=10, outage_backoff_max=35)
    assert not github.is_resting()
    assert [github.record_failure(outage()) for _ in range(4)] == [10, 20, 35, 35]
    # resting exactly until the last failure's wait is over
    clock.now += 34.9
    assert github.is_resting()
    clock.now += 0.1
    assert not github.is_resting()
    # a success starts over
    github.record_success()
    assert github.record_failure(outage()) == 10
    assert github.is_resting()


def test_retry_after_is_honoured_when_longer_but_never_past_the_maximum():
    clock = Clock()
    github = provider(clock, outage_backoff=10, outage_backoff_max=100)
    assert github.record_failure(outage(retry_after=5)) == 10
    github.record_success()
    assert github.record_failure(outage(retry_after=42)) == 42
    clock.now += 41
    assert github.is_resting()
    clock.now += 1
    assert not github.is_resting()
    github.record_success()
    assert github.record_failure(outage(retry_after=3600)) == 100


def test_the_default_clock_is_monotonic_time():
    import time

    assert GitHubProvider(provider_name="github").outage_clock is time.monotonic


def test_a_clock_that_is_not_callable_is_refused_by_its_key_path():
    with pytest.raises(ConfigError) as info:
        CommunityAuthenticator(
            providers={
                "github": {
                    "kind": "github",
                    "config": {"client_id": "x", "outage_clock": 5},
                }
            },
        )
    assert str(info.value) == (
        "CommunityAuthenticator.providers['github'].config: The 'outage_clock' "
        "trait of a GitHubProvider instance expected a callable, not the int 5."
    )
