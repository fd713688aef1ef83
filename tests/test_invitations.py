"""Invitation codes and the requests community admins make (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubext import invitations as pure
from hubext.self_service import InvitationBounds

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BOUNDS = InvitationBounds(max_uses=300, max_days=14, max_membership_days=None)


def test_codes_have_80_random_bits_and_are_forgiving_to_type():
    codes = {pure.new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert pure.CODE_BITS == 80 and len(pure.ALPHABET) == 32
    code = "7K3MQ9XA2HVDTR4B"
    assert pure.shown(code) == "7K3M-Q9XA-2HVD-TR4B"
    assert pure.normalize(" 7k3m-q9xa 2hvd-tr4b ") == code
    assert pure.normalize("7K3M-Q9XA-2HVD-TR4O") == "7K3MQ9XA2HVDTR40"
    assert pure.normalize("IL00000000000000") == "1100000000000000"
    for bad in ("", "7K3M", "7K3M-Q9XA-2HVD-TR4BX", "7K3M-Q9XA-2HVD-TR4U", None, 5):
        assert pure.normalize(bad) is None


@given(st.text(max_size=80))
def test_normalize_never_fails(text):
    code = pure.normalize(text)
    assert code is None or (
        len(code) == pure.CODE_LENGTH and set(code) <= set(pure.ALPHABET)
    )


def test_hash_and_constant_time_match():
    code = pure.new_code()
    stored = pure.code_hash(code)
    assert len(stored) == 64 and code not in stored
    assert pure.matches(code, stored)
    assert not pure.matches(pure.new_code(), stored)


def _body(**over):
    body = {
        "kind": "code",
        "max_uses": 30,
        "expires_at": "2026-03-06T17:00:00Z",
    }
    body.update(over)
    return body


def test_a_request_within_the_bounds():
    request = pure.check_request(BOUNDS, _body(note="Ocean workshop"), NOW)
    assert request.kind == "code" and request.max_uses == 30
    assert request.expires_at == datetime(2026, 3, 6, 17, tzinfo=UTC)
    assert request.membership_ends_at is None and request.note == "Ocean workshop"
    personal = pure.check_request(
        BOUNDS,
        {
            "kind": "personal",
            "expires_at": "2026-03-06T17:00:00+00:00",
            "membership_ends_at": "2026-03-07T00:00:00+00:00",
        },
        NOW,
    )
    assert personal.max_uses == 1
    assert personal.membership_ends_at == datetime(2026, 3, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("bounds", "body", "field", "part"),
    [
        (None, _body(), "invitations", "may not invite"),
        (BOUNDS, [], "body", "JSON object"),
        (BOUNDS, _body(admin=True), "admin", "unknown field"),
        (BOUNDS, _body(kind="admin"), "kind", "one of personal, code"),
        (BOUNDS, _body(max_uses=301), "max_uses", "at most 300"),
        (BOUNDS, _body(max_uses=0), "max_uses", "above 0"),
        (BOUNDS, _body(max_uses=True), "max_uses", "above 0"),
        (BOUNDS, _body(kind="personal", max_uses=2), "max_uses", "one use"),
        (BOUNDS, _body(expires_at="2026-03-06"), "expires_at", "with its zone"),
        (BOUNDS, _body(expires_at="2026-03-01T00:00:00Z"), "expires_at", "past"),
        (BOUNDS, _body(expires_at="2026-03-17T00:00:00Z"), "expires_at", "14 days"),
        (
            BOUNDS,
            _body(membership_ends_at="2026-03-05T00:00:00Z"),
            "membership_ends_at",
            "before the invitation expires",
        ),
        (
            InvitationBounds(10, 14, 7),
            _body(max_uses=5),
            "membership_ends_at",
            "required",
        ),
        (
            InvitationBounds(10, 14, 7),
            _body(max_uses=5, membership_ends_at="2026-03-10T00:00:00Z"),
            "membership_ends_at",
            "7 days",
        ),
        (BOUNDS, _body(note="a\nb"), "note", "a line of text"),
    ],
)
def test_requests_outside_the_bounds_name_the_field(bounds, body, field, part):
    with pytest.raises(pure.RequestProblem) as caught:
        pure.check_request(bounds, body, NOW)
    assert caught.value.field == field
    assert part in caught.value.reason


def test_refusal_at_the_boundaries():
    expires = NOW + timedelta(days=1)
    kwargs = {"expires_at": expires, "revoked_at": None, "uses": 0, "max_uses": 1}
    assert pure.refusal_of(**kwargs, now=expires - timedelta(microseconds=1)) is None
    assert pure.refusal_of(**kwargs, now=expires) == "expired"
    assert pure.refusal_of(**{**kwargs, "uses": 1}, now=NOW) == "used_up"
    assert pure.refusal_of(**{**kwargs, "revoked_at": NOW}, now=NOW) == "revoked"
    assert (
        pure.refusal_of(
            **{**kwargs, "revoked_at": NOW}, now=NOW - timedelta(microseconds=1)
        )
        is None
    )


def test_attempts_are_limited_in_a_sliding_window():
    from hubext.console.join import Attempts

    now = [0.0]
    attempts = Attempts(3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert not attempts.blocked("bob")
        attempts.failed("bob")
    assert attempts.blocked("bob") and not attempts.blocked("ann")
    now[0] = 59.9
    assert attempts.blocked("bob")
    now[0] = 60.0
    assert not attempts.blocked("bob")
    attempts.failed("cy")
    now[0] = 200.0
    attempts.purge()
    assert attempts._seen == {}
