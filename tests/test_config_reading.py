"""Reading traitlets configuration without building the classes."""

from __future__ import annotations

import pytest
from traitlets import Integer, TraitType, Unicode
from traitlets.config import Config, Configurable

from hubext._validation import ConfigErrors, errors_of
from hubext.config_reading import (
    check_trait_values,
    configured_section,
    configured_value,
)


class NeedsItsObject(TraitType):
    """A trait whose validation reads the object's state."""

    def validate(self, obj, value):
        return obj.built_state + value


class Base(Configurable):
    size = Integer(1, config=True)
    api_token = Unicode("", config=True)
    offset = NeedsItsObject(0, config=True)
    not_configurable = Integer(0)


class Derived(Base):
    def __init__(self, **kwargs):
        raise AssertionError("the check must not build the class")


def test_configured_value_follows_the_mro():
    config = Config()
    config.Base.size = 3
    assert configured_section(Derived, config, "size") == "Base"
    assert configured_value(Derived, config, "size", 1) == 3
    config.Derived.size = 4
    assert configured_section(Derived, config, "size") == "Derived"
    assert configured_value(Derived, config, "size", 1) == 4
    assert configured_value(Derived, config, "api_token", "none") == "none"


def test_every_bad_value_is_reported_with_the_section_written():
    config = Config()
    config.Derived.size = "big"
    config.Base.size = "ignored: Derived's value applies"
    config.Base.api_token = ["s3cr3t"]
    config.Base.offset = 5  # validated only on a built object: left alone
    # not a config trait: traitlets ignores it (with a warning), hubext refuses it
    config.Base.not_configurable = "x"
    config.Base.sise = 2
    with pytest.raises(ConfigErrors) as e:
        check_trait_values(Derived, config)
    errors = {error.path: error.reason for error in errors_of(e.value)}
    assert list(errors) == [
        "Derived.size",
        "Base.api_token",
        "Base.not_configurable",
        "Base.sise",
    ]
    assert errors["Base.not_configurable"] == (
        "Derived has no such setting and would ignore it"
    )
    assert errors["Base.sise"] == (
        "Derived has no such setting and would ignore it (did you mean 'size'?)"
    )
    assert "expected an int, not the str 'big'" in errors["Derived.size"]
    # a setting named like a secret: its value is never echoed
    assert "s3cr3t" not in str(e.value)


def test_good_and_appended_values_pass():
    config = Config()
    config.Derived.size = 2
    config.Base.api_token = "t"
    config.Base.offset.append(1)  # a LazyConfigValue: not checked here
    check_trait_values(Derived, config)


def test_a_value_given_as_changes_is_applied_to_the_default():
    # c.X.y.append(...) in a file loaded with load_subconfig(): traitlets
    # applies it to the trait's default; so does the reading, on copies.
    config = Config()
    lazy = Config()
    lazy.Derived.tags.append(2)
    config.merge(lazy)
    assert configured_value(Derived, config, "tags", [1]) == [1, 2]
    assert configured_value(Derived, config, "tags", [5]) == [5, 2]  # not cached
    assert config.Derived.tags.get_value([]) == [2]  # the config is untouched
