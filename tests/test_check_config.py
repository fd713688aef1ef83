"""Start-up validation: `hubext check-config` and a real hub refuse the same configs."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap

import pytest

from demo.services import DEMO_CONFIG, REPO, DemoEnvironment
from hubext.cli import main

BAD_CONFIGS = [
    pytest.param(
        'c.Communities.communities["ocean lab"] = {}',
        "Communities.communities['ocean lab']: slug must match",
        id="bad-slug",
    ),
    pytest.param(
        'c.Communities.communities["ocean-lab"]["shared-data"] = []',
        "Communities.communities['ocean-lab']['shared-data']: unknown key",
        id="unknown-key",
    ),
    pytest.param(
        'c.Communities.communities["astro-101"]["display_name"] = ["x"]',
        "Communities.communities['astro-101'].display_name: expected a string",
        id="wrong-type",
    ),
    pytest.param(
        'c.Communities.communities["astro-101"]["members"].append({"provider": "gitlab"})',
        "Communities.communities['astro-101'].members[2].provider: no provider named 'gitlab'",
        id="rule-names-unknown-provider",
    ),
    pytest.param(
        'c.CommunityAuthenticator.providers["demo"]["kind"] = "saml"',
        "CommunityAuthenticator.providers['demo'].kind: unknown provider kind 'saml'",
        id="unknown-provider-kind",
    ),
    pytest.param(
        'c.CommunityAuthenticator.providers["demo"]["config"]["client_idd"] = "x"',
        "CommunityAuthenticator.providers['demo'].config.client_idd: unknown key "
        "(did you mean 'client_id'?)",
        id="unknown-provider-trait",
    ),
    pytest.param(
        'c.Communities.communities["ocean-lab"]["default_profile"] = "gpus"',
        "Communities.communities['ocean-lab'].default_profile: no profile with slug "
        "'gpus'; profiles: standard, ocean-model, astro-workshop",
        id="unknown-default-profile",
    ),
    pytest.param(
        'c.LocalCommunitySpawner.profile_list[1]["kubespawner_override"]["image"] = "x"',
        "LocalCommunitySpawner.profile_list[1].kubespawner_override.image: cannot be "
        "overridden on hubext-local",
        id="local-override-not-supported",
    ),
    pytest.param(
        'c.LocalCommunitySpawner.profile_list[2]["allowed_group"] = ["x"]',
        "LocalCommunitySpawner.profile_list[2].allowed_group: unknown key "
        "(did you mean 'allowed_groups'?)",
        id="misspelled-allowed-groups",
    ),
    pytest.param(
        'c.CommunityAuthenticator.providers["demo"]["username_template"] = "{user}"',
        "CommunityAuthenticator.providers['demo'].username_template: unknown field {user}",
        id="bad-username-template",
    ),
    pytest.param(
        'c.Communities.communities["astro-101"]["shared_data"][0]["mount_path"] = '
        '"/home/jovyan/shared/ocean-lab"',
        "Communities.communities['astro-101'].shared_data[0].mount_path: "
        "'/home/jovyan/shared/ocean-lab' overlaps the mount path "
        "'/home/jovyan/shared/ocean-lab/datasets' of ocean-lab/datasets",
        id="shared-folders-overlap",
    ),
    pytest.param(
        'c.Communities.communities["ocean-lab"]["shared_data"][0]["admins"] = "rw"',
        "Communities.communities['ocean-lab'].shared_data[0].admins: must be one of "
        "read-only, read-write, none, got 'rw'",
        id="unknown-access",
    ),
    pytest.param(
        'c.Communities.communities["ocean-lab"]["shared_data"][0]["source"] = '
        '{"nfs": {"server": "nfs.example.org", "path": "/export"}}',
        "Communities.communities['ocean-lab'].shared_data[0].source: hubext-local "
        "can use only host_path sources, not nfs",
        id="local-needs-host-path",
    ),
    pytest.param(
        'c.LocalCommunitySpawner.home_mount_path = "/home/jovyan/shared/ocean-lab/datasets/me"',
        "Communities.communities['ocean-lab'].shared_data[0].mount_path: "
        "'/home/jovyan/shared/ocean-lab/datasets' would hide the home directory "
        "'/home/jovyan/shared/ocean-lab/datasets/me'",
        id="shared-folder-hides-home",
    ),
    pytest.param(
        'c.LocalCommunitySpawner.profile_list[2]["allowed_groups"] = ["astro101"]',
        "LocalCommunitySpawner.profile_list[2].allowed_groups[0]: no community "
        "'astro101' (did you mean 'astro-101'?); communities: astro-101, ocean-lab "
        "(with CommunityAuthenticator a user's groups are exactly their communities, "
        "so this name matches nobody)",
        id="allowed-groups-names-no-community",
    ),
]


#: Four mistakes in four places: a community key, a rule, a profile and a
#: provider. Every one is reported, at once, each with its key path.
FOUR_ERRORS = [
    (
        'c.Communities.communities["ocean-lab"]["shared-data"] = []',
        "Communities.communities['ocean-lab']['shared-data']: unknown key "
        "(did you mean 'shared_data'?)",
    ),
    (
        'c.Communities.communities["astro-101"]["members"][1]["email_domain"] = '
        '"astro..example.edu"',
        "Communities.communities['astro-101'].members[1].email_domain: "
        "'astro..example.edu' is not a domain name",
    ),
    (
        'c.CommunityAuthenticator.providers["demo"]["kind"] = "saml"',
        "CommunityAuthenticator.providers['demo'].kind: unknown provider kind 'saml'",
    ),
    (
        'c.LocalCommunitySpawner.profile_list[2]["allowed_groups"] = ["astro101"]',
        "LocalCommunitySpawner.profile_list[2].allowed_groups[0]: no community "
        "'astro101' (did you mean 'astro-101'?)",
    ),
]


def write_config(tmp_path, *lines: str):
    path = tmp_path / "jupyterhub_config.py"
    head = textwrap.dedent(
        f"""\
        load_subconfig({str(DEMO_CONFIG)!r})
        c = get_config()
        """
    )
    path.write_text(head + "".join(f"{line}\n" for line in lines))
    return path


def write_hubext_config(tmp_path, spawner: str, body: str):
    """A configuration of hubext's authenticator and ``spawner``, then ``body``."""
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        "c = get_config()\n"
        'c.JupyterHub.authenticator_class = "hubext"\n'
        f"c.JupyterHub.spawner_class = {spawner!r}\n" + textwrap.dedent(body)
    )
    return path


def test_demo_config_is_valid(capsys):
    assert main(["check-config", str(REPO / "jupyterhub_config.py")]) == 0
    out = capsys.readouterr().out
    assert "ocean-lab  Ocean Modelling Lab" in out
    assert "astro-101" in out
    assert "2 communities; configuration is valid." in out


@pytest.mark.parametrize(("line", "message"), BAD_CONFIGS)
def test_check_config_refuses(tmp_path, capsys, line, message):
    assert main(["check-config", str(write_config(tmp_path, line))]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"hubext: invalid configuration: {message}"), err
    assert err.count("\n") == 1


def test_check_config_reports_every_error(tmp_path, capsys):
    path = write_config(tmp_path, *(line for line, _ in FOUR_ERRORS))
    assert main(["check-config", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 5, lines
    for line, (_, message) in zip(lines, FOUR_ERRORS, strict=False):
        assert line.startswith(f"hubext: invalid configuration: {message}"), line
    assert lines[4] == "hubext: 4 configuration errors"


def test_check_config_reports_every_bad_provider(tmp_path, capsys):
    path = write_config(
        tmp_path,
        'c.CommunityAuthenticator.providers["demo"]["kind"] = "saml"',
        'c.CommunityAuthenticator.providers["uni"] = '
        '{"kind": "oidc", "config": {"client_idd": "x"}}',
    )
    assert main(["check-config", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "hubext: invalid configuration: CommunityAuthenticator.providers['demo'].kind: "
        "unknown provider kind 'saml'; known kinds: cilogon, github, oidc",
        "hubext: invalid configuration: CommunityAuthenticator.providers['uni']"
        ".config.client_idd: unknown key (did you mean 'client_id'?)",
        "hubext: 2 configuration errors",
    ]


def test_allowed_groups_named_as_configured_on_kubespawner(tmp_path, capsys):
    # The key path is the section the admin wrote (c.KubeSpawner), not the
    # subclass; names that no community has are refused with or without a typo.
    path = write_hubext_config(
        tmp_path,
        "hubext-kube",
        """\
            c.Communities.communities = {"astro-101": {}, "ocean-lab": {}}
            c.KubeSpawner.profile_list = [
                {"display_name": "Workshop", "allowed_groups": ["Astro-101"]},
                {"display_name": "Staff", "allowed_groups": ["astro101", "staff"]},
            ]
        """,
    )
    assert main(["check-config", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 3)[2] for line in lines[:-1]] == [
        "KubeSpawner.profile_list[1].allowed_groups[0]",
        "KubeSpawner.profile_list[1].allowed_groups[1]",
    ]
    assert "(did you mean 'astro-101'?)" in lines[0]
    assert "no community 'staff'; communities: astro-101, ocean-lab" in lines[1]


def test_check_config_console_script(tmp_path):
    bad = write_config(tmp_path, BAD_CONFIGS[0].values[0])
    result = subprocess.run(
        [sys.executable, "-m", "hubext.cli", "check-config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Communities.communities['ocean lab']: slug must match" in result.stderr


def test_check_config_missing_file(capsys):
    assert main(["check-config", "/nonexistent/jupyterhub_config.py"]) == 2


def test_check_config_secrets_not_echoed(tmp_path, capsys):
    line = 'c.CommunityAuthenticator.providers["demo"]["config"]["client_secret"] = 12345678'
    assert main(["check-config", str(write_config(tmp_path, line))]) == 1
    err = capsys.readouterr().err
    assert "providers['demo'].config" in err
    assert "12345678" not in err


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("line", "message"),
    BAD_CONFIGS[:2] + BAD_CONFIGS[3:5] + BAD_CONFIGS[6:9] + BAD_CONFIGS[-4:],
)
def test_hub_refuses_to_start(tmp_path, line, message):
    env = DemoEnvironment.with_free_ports(tmp_path / "hub")
    log = tmp_path / "hub.log"
    with open(log, "wb") as out:
        hub = env.start_hub(write_config(tmp_path, line), stdout=out, wait=False)
        try:
            returncode = hub.wait(timeout=60)
        finally:
            hub.kill()
    assert returncode != 0
    lines = log.read_text().splitlines()
    critical = [line for line in lines if "hubext: invalid configuration:" in line]
    assert len(critical) == 1, lines[-20:]
    assert message in critical[0]
    # The one line that matters, not buried under JupyterHub's traceback.
    assert not [line for line in lines if "Traceback" in line], lines[-20:]
    assert "1 configuration error; the hub does not start" in lines[-1], lines[-5:]


@pytest.mark.e2e
def test_hub_reports_every_error_at_start(tmp_path):
    env = DemoEnvironment.with_free_ports(tmp_path / "hub")
    log = tmp_path / "hub.log"
    config = write_config(tmp_path, *(line for line, _ in FOUR_ERRORS))
    with open(log, "wb") as out:
        hub = env.start_hub(config, stdout=out, wait=False)
        try:
            returncode = hub.wait(timeout=60)
        finally:
            hub.kill()
    assert returncode == 1
    lines = log.read_text().splitlines()
    critical = [line for line in lines if "hubext: invalid configuration:" in line]
    assert len(critical) == 4, lines[-20:]
    for line, (_, message) in zip(critical, FOUR_ERRORS, strict=True):
        assert message in line, line
    assert not [line for line in lines if "Traceback" in line], lines[-30:]
    assert "hubext: 4 configuration errors; the hub does not start" in lines[-1]


def test_kube_checks_are_all_made(tmp_path, capsys):
    # One error in each of hubext-kube's independent checks: none hides another,
    # and each is named as the admin wrote it (c.KubeSpawner, not the subclass).
    path = write_hubext_config(
        tmp_path,
        "hubext-kube",
        """\
            c.Communities.communities = {
                "ocean-lab": {
                    "limits": {"budget": {"server_hours": 10}},
                    "kubernetes": {"service_account": "ocean"},
                },
            }
            c.UsageLedger.enabled = False
            c.KubeSpawner.service_account = "ocean"
            c.KubeSpawner.home_mount_path = "relative"
            c.KubeSpawner.profile_list = [
                {"display_name": "Staff", "allowed_groups": ["ocean-lab"],
                 "kubespawner_override": {"service_account": "x"}},
            ]
        """,
    )
    assert main(["check-config", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 3)[2] for line in lines[:-1]] == [
        "Communities.communities['ocean-lab'].limits.budget",
        "KubeSpawner.home_mount_path",
        "KubeSpawner.service_account",
        "KubeSpawner.profile_list[0].kubespawner_override.service_account",
    ], lines
    assert lines[-1] == "hubext: 4 configuration errors"


@pytest.mark.parametrize("spawner", ["hubext-kube", "hubext-local"])
def test_spawner_values_of_the_wrong_type_stop_the_hub(tmp_path, capsys, spawner):
    # JupyterHub builds a spawner only at a spawn: checked at start-up instead.
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        textwrap.dedent(
            f"""\
            c = get_config()
            c.JupyterHub.authenticator_class = "hubext"
            c.JupyterHub.spawner_class = {spawner!r}
            c.Communities.communities = {{"ocean-lab": {{}}}}
            c.Spawner.cpu_limit = "lots"
            c.Spawner.cmd.append("--debug")
            c.Spawner.http_timeout = 60
            """
        )
        + (
            'c.KubeSpawner.secret_mount_path = ["s3cr3t-value"]\n'
            if spawner == "hubext-kube"
            else "c.LocalCommunitySpawner.home_root = 7\n"
        )
    )
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    lines = err.splitlines()
    spawner_class = (
        "CommunityKubeSpawner" if spawner == "hubext-kube" else "LocalCommunitySpawner"
    )
    # In the order of the class's sections (the most derived first).
    own, cpu = lines[0], lines[1]
    assert cpu == (
        "hubext: invalid configuration: Spawner.cpu_limit: The 'cpu_limit' trait "
        f"of a {spawner_class} instance expected a float, not the str 'lots'."
    )
    if spawner == "hubext-kube":
        assert own == (
            "hubext: invalid configuration: KubeSpawner.secret_mount_path: "
            "invalid value (TraitError); check the types of the values"
        )
        assert "s3cr3t" not in err
    else:
        assert own == (
            "hubext: invalid configuration: LocalCommunitySpawner.home_root: The "
            "'home_root' trait of a LocalCommunitySpawner instance expected a "
            "unicode string, not the int 7."
        )
    assert lines[2:] == ["hubext: 2 configuration errors"]


def test_a_profile_list_given_as_a_tuple_is_checked_too(tmp_path, capsys):
    # traitlets turns the tuple into a list in the spawner: the check must
    # read it the same, or the name would slip through to the spawner.
    path = write_hubext_config(
        tmp_path,
        "hubext-kube",
        """\
        c.Communities.communities = {"ocean-lab": {}}
        c.KubeSpawner.profile_list = (
            {"display_name": "Staff", "allowed_groups": ["staff"]},
        )
        """,
    )
    assert main(["check-config", str(path)]) == 1
    assert capsys.readouterr().err.startswith(
        "hubext: invalid configuration: KubeSpawner.profile_list[0]"
        ".allowed_groups[0]: no community 'staff'"
    )


def test_one_community_is_one(tmp_path, capsys):
    path = write_hubext_config(
        tmp_path, "hubext-local", 'c.Communities.communities = {"ocean-lab": {}}\n'
    )
    assert main(["check-config", str(path)]) == 0
    assert capsys.readouterr().out.endswith("\n1 community; configuration is valid.\n")


# -- auth_state's key ---------------------------------------------------------------

MAKE_A_KEY = (
    "a key is 32 random bytes, hex-encoded (64 characters: make one with "
    "`openssl rand -hex 32`) or base64url-encoded (44 characters)"
)


def test_a_missing_crypt_key_is_named_with_how_to_make_one(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY")
    assert main(["check-config", str(REPO / "jupyterhub_config.py")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "hubext: invalid configuration: JUPYTERHUB_CRYPT_KEY: no key: hubext keeps "
        "the identity each account is bound to, and the provider's tokens, in "
        "auth_state, which JupyterHub encrypts with it. Set JUPYTERHUB_CRYPT_KEY "
        "to a key made with `openssl rand -hex 32`, and keep it: with another key, "
        "stored auth_state cannot be read (zero-to-jupyterhub makes and keeps one)"
    ]


BASE64_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        pytest.param("ab" * 31, "the key is not a key JupyterHub can use (62 "
                     f"characters); {MAKE_A_KEY}", id="short-hex"),
        pytest.param("zz" * 32, "the key is not a key JupyterHub can use (64 "
                     f"characters); {MAKE_A_KEY}", id="64-not-hex"),
        pytest.param("!" * 44, "the key is not a key JupyterHub can use (44 "
                     f"characters); {MAKE_A_KEY}", id="44-not-base64"),
        pytest.param("é" * 32, f"the key has characters that are not ASCII; {MAKE_A_KEY}",
                     id="not-ascii"),
        pytest.param(f"{'ab' * 32};{'cd' * 20}", "key 2 of 2 (';'-separated) is not a "
                     "key JupyterHub can use (40 characters)", id="second-of-two"),
        pytest.param(" ; ", "no key: hubext keeps", id="only-separators"),
    ],
)  # fmt: skip
def test_a_crypt_key_jupyterhub_cannot_use_is_refused_unseen(
    tmp_path, capsys, monkeypatch, key, problem
):
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", key)
    assert main(["check-config", str(REPO / "jupyterhub_config.py")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"hubext: invalid configuration: JUPYTERHUB_CRYPT_KEY: {problem}"
    ), err
    for part in key.split(";"):
        if part.strip():
            assert part[:8] not in err


@pytest.mark.parametrize(
    "key", ["ab" * 32, BASE64_KEY, "k" * 32, f"{'ab' * 32};{BASE64_KEY}"]
)
def test_the_keys_jupyterhub_accepts_are_accepted(capsys, monkeypatch, key):
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", key)
    assert main(["check-config", str(REPO / "jupyterhub_config.py")]) == 0


def test_configured_crypt_keys_are_checked_instead(tmp_path, capsys, monkeypatch):
    # zero-to-jupyterhub sets hub.config.CryptKeeper.keys; then the variable
    # is not read (as JupyterHub does).
    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY")
    path = write_config(tmp_path, f'c.CryptKeeper.keys = ["{"ab" * 32}", "s3cr3t"]')
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "hubext: invalid configuration: CryptKeeper.keys[1]: the key is not a key "
        f"JupyterHub can use (6 characters); {MAKE_A_KEY}"
    ]
    assert "s3cr3t" not in err


@pytest.mark.e2e
def test_hub_without_a_crypt_key_says_how_to_make_one(tmp_path):
    env = DemoEnvironment.with_free_ports(tmp_path / "hub")
    env.crypt_key = ""
    log = tmp_path / "hub.log"
    with open(log, "wb") as out:
        hub = env.start_hub(stdout=out, wait=False)
        try:
            returncode = hub.wait(timeout=60)
        finally:
            hub.kill()
    assert returncode == 1
    lines = log.read_text().splitlines()
    critical = [line for line in lines if "hubext: invalid configuration:" in line]
    assert len(critical) == 1, lines[-20:]
    assert "JUPYTERHUB_CRYPT_KEY: no key:" in critical[0]
    assert "`openssl rand -hex 32`" in critical[0]
    assert not [line for line in lines if "Traceback" in line], lines[-20:]
    assert "1 configuration error; the hub does not start" in lines[-1], lines[-5:]
    # not JupyterHub's own line, which comes later and says neither
    assert not [line for line in lines if "encryption is not available" in line]


# -- settings on a class the hub does not use -------------------------------------

NOT_READ = [
    pytest.param(
        "hubext-local",
        'c.KubeSpawner.profile_list = [{"display_name": "Standard"}]',
        "KubeSpawner.profile_list: ignored: the hub's spawner, LocalCommunitySpawner "
        "(JupyterHub.spawner_class), does not read KubeSpawner settings; set it as "
        "c.LocalCommunitySpawner.profile_list",
        id="kubespawner-profiles-on-hubext-local",
    ),
    pytest.param(
        "hubext-local",
        'c.KubeSpawner.image = "quay.io/jupyter/scipy-notebook"',
        "KubeSpawner.image: ignored: the hub's spawner, LocalCommunitySpawner "
        "(JupyterHub.spawner_class), does not read KubeSpawner settings; "
        "LocalCommunitySpawner has no such setting",
        id="kubespawner-image-on-hubext-local",
    ),
    pytest.param(
        "hubext-kube",
        'c.LocalCommunitySpawner.profile_list = [{"display_name": "Standard"}]',
        "LocalCommunitySpawner.profile_list: ignored: the hub's spawner, "
        "CommunityKubeSpawner (JupyterHub.spawner_class), does not read "
        "LocalCommunitySpawner settings; set it as c.CommunityKubeSpawner.profile_list",
        id="local-profiles-on-hubext-kube",
    ),
    pytest.param(
        None,
        'c.LocalCommunitySpawner.profile_list = [{"display_name": "Standard"}]',
        "LocalCommunitySpawner.profile_list: ignored: the hub's spawner, "
        "LocalProcessSpawner (JupyterHub.spawner_class), does not read "
        "LocalCommunitySpawner settings; to use hubext-local, set "
        "c.JupyterHub.spawner_class = 'hubext-local'",
        id="no-spawner-class-set",
    ),
    pytest.param(
        "hubext-local",
        'c.LocalCommunitySpawner.profile_lists = [{"display_name": "Standard"}]',
        "LocalCommunitySpawner.profile_lists: LocalCommunitySpawner has no such "
        "setting and would ignore it (did you mean 'profile_list'?)",
        id="misspelled-setting",
    ),
    pytest.param(
        "hubext-local",
        'c.GitHubOAuthenticator.client_id = "abc"',
        "GitHubOAuthenticator.client_id: ignored: no provider in "
        "CommunityAuthenticator.providers reads GitHubOAuthenticator settings (kind "
        "'github'); a provider's settings go in "
        "CommunityAuthenticator.providers[<name>]['config']",
        id="github-settings-without-a-github-provider",
    ),
    pytest.param(
        "hubext-local",
        'c.CommunityAuthenticator.client_id = "abc"',
        "CommunityAuthenticator.client_id: CommunityAuthenticator has no such "
        "setting and would ignore it; a provider's setting goes in "
        "CommunityAuthenticator.providers[<name>]['config']",
        id="provider-setting-on-the-authenticator",
    ),
    pytest.param(
        "hubext-local",
        "c.PAMAuthenticator.open_sessions = False",
        "PAMAuthenticator.open_sessions: ignored: the hub's authenticator, "
        "CommunityAuthenticator (JupyterHub.authenticator_class), does not read "
        "PAMAuthenticator settings; CommunityAuthenticator has no such setting",
        id="another-authenticators-settings",
    ),
]


@pytest.mark.parametrize(("spawner", "line", "message"), NOT_READ)
def test_a_setting_the_hub_would_ignore_is_refused(
    tmp_path, capsys, spawner, line, message
):
    body = 'c.Communities.communities = {"ocean-lab": {}}\n' + line + "\n"
    path = write_hubext_config(tmp_path, spawner or "", body)
    if spawner is None:  # JupyterHub's default spawner
        path.write_text(
            path.read_text().replace("c.JupyterHub.spawner_class = ''\n", "")
        )
    assert main(["check-config", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"hubext: invalid configuration: {message}"
    ]


def test_hubext_settings_without_hubexts_authenticator_are_refused(tmp_path, capsys):
    # The hub would run no hubext code: only check-config can say it.
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        'c = get_config()\nc.CommunityAuthenticator.providers = {"uni": {"kind": "oidc"}}\n'
    )
    assert main(["check-config", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "hubext: invalid configuration: CommunityAuthenticator.providers: ignored: the "
        "hub's authenticator, PAMAuthenticator (JupyterHub.authenticator_class), does "
        "not read CommunityAuthenticator settings; for hubext's, set "
        "c.JupyterHub.authenticator_class = 'hubext'"
    ]


def test_settings_the_hub_reads_are_accepted(tmp_path, capsys):
    # A provider's kind makes its OAuthenticator's section read; KubeSpawner's
    # deprecated names still work in its own section (KubeSpawner moves them).
    path = write_hubext_config(
        tmp_path,
        "hubext-kube",
        """\
        c.Communities.communities = {"ocean-lab": {"members": [{"github": "ocean"}]}}
        c.CommunityAuthenticator.providers = {"gh": {"kind": "github"}}
        c.GitHubOAuthenticator.client_id = "abc"
        c.OAuthenticator.client_secret = "def"
        c.KubeSpawner.image_spec = "quay.io/jupyter/scipy-notebook"
        c.Spawner.default_url = "/lab"
        """,
    )
    assert main(["check-config", str(path)]) == 0, capsys.readouterr().err


@pytest.mark.e2e
def test_hub_refuses_kubespawner_profiles_on_hubext_local(tmp_path):
    # profiles.md's example with the spawner its comment offered
    env = DemoEnvironment.with_free_ports(tmp_path / "hub")
    log = tmp_path / "hub.log"
    config = write_config(
        tmp_path,
        'c.KubeSpawner.profile_list = [{"display_name": "GPU", "slug": "gpu"}]',
    )
    with open(log, "wb") as out:
        hub = env.start_hub(config, stdout=out, wait=False)
        try:
            returncode = hub.wait(timeout=60)
        finally:
            hub.kill()
    assert returncode == 1
    lines = log.read_text().splitlines()
    critical = [line for line in lines if "hubext: invalid configuration:" in line]
    assert [line.split("hubext: invalid configuration: ")[1] for line in critical] == [
        NOT_READ[0].values[2]
    ]
    assert not [line for line in lines if "Traceback" in line], lines[-20:]
    assert "1 configuration error; the hub does not start" in lines[-1], lines[-5:]


# -- configuration files that raise, and keys added from another file -------------


def write_config_dir(tmp_path, files: dict[str, str]):
    """A hub configured in jupyterhub_config.d/, as the demo: the top file
    loads each file with load_subconfig(), in sorted order."""
    d = tmp_path / "jupyterhub_config.d"
    d.mkdir()
    top = tmp_path / "jupyterhub_config.py"
    top.write_text((REPO / "jupyterhub_config.py").read_text())
    files = {
        "00-hub.py": 'c = get_config()\nc.JupyterHub.authenticator_class = "hubext"\n'
        'c.Communities.communities = {"astro-101": {}, "ocean-lab": {}}\n',
        **files,
    }
    for name, text in files.items():
        (d / name).write_text(textwrap.dedent(text))
    return top


def test_the_file_and_line_that_raised_are_named(tmp_path, capsys):
    top = write_config_dir(
        tmp_path,
        {"30-usage.py": "c = get_config()\n\nc.UsageLedger.db_url = 3 + 'x'\n"},
    )
    assert main(["check-config", str(top)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"hubext: could not load {top}: {tmp_path}/jupyterhub_config.d/30-usage.py, "
        "line 3: TypeError: unsupported operand type(s) for +: 'int' and 'str'",
        "    c.UsageLedger.db_url = 3 + 'x'",
    ]


def test_a_syntax_error_is_named_with_its_file_and_line(tmp_path, capsys):
    top = write_config_dir(
        tmp_path, {"20-spawner.py": "c = get_config()\nc.Spawner.cmd = ['a',\n"}
    )
    assert main(["check-config", str(top)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(
        f"hubext: could not load {top}: {tmp_path}/jupyterhub_config.d/20-spawner.py, "
        "line 2: SyntaxError: "
    ), lines
    assert lines[1:] == ["    c.Spawner.cmd = ['a',"]


def test_a_line_that_may_hold_a_secret_is_not_shown(tmp_path, capsys):
    top = write_config_dir(
        tmp_path,
        {"10-identity.py": "c = get_config()\nc.X.client_secret = 's3cr3t' + 1\n"},
    )
    assert main(["check-config", str(top)]) == 1
    err = capsys.readouterr().err
    assert "10-identity.py, line 2: TypeError" in err
    assert "(the line is not shown: it may hold a secret)" in err
    assert "s3cr3t" not in err


def test_indexing_a_community_in_another_file_says_what_works(tmp_path, capsys):
    # the pattern limits.md and usage.md showed, in a file of its own
    top = write_config_dir(
        tmp_path,
        {
            "50-limits.py": """\
                c = get_config()
                c.Communities.communities["astro-101"]["limits"] = {
                    "max_servers": 30,
                }
            """
        },
    )
    assert main(["check-config", str(top)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"hubext: could not load {top}: {tmp_path}/jupyterhub_config.d/50-limits.py, "
        "line 2: TypeError: 'LazyConfigValue' object is not subscriptable",
        '    c.Communities.communities["astro-101"]["limits"] = {',
        "hubext: a file loaded with load_subconfig() starts with an empty c, so "
        "c.Communities.communities there is not the value another file set and has "
        "no items to index; add keys to a community with add_to_community(c, "
        "'astro-101', limits=...) (from hubext import add_to_community)",
    ]


def test_keys_added_from_another_file_are_merged(tmp_path, capsys):
    top = write_config_dir(
        tmp_path,
        {
            # before the file that defines the communities: the order is free
            "00-a-limits.py": """\
                from hubext import add_to_community
                c = get_config()
                add_to_community(c, "astro-101", limits={"max_servers": 30})
            """,
            "50-more.py": """\
                from hubext import add_to_community
                c = get_config()
                add_to_community(c, "astro-101", display_name="Astronomy 101",
                                 limits={"max_servers_per_member": 1})
                c.Communities.communities.update({"bio": {"display_name": "Bio"}})
            """,
        },
    )
    assert main(["check-config", str(top)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "astro-101  Astronomy 101" in out
    assert "30 servers, 1/member" in out
    assert "3 communities; configuration is valid." in out


def test_keys_added_to_no_community_name_their_call(tmp_path, capsys):
    top = write_config_dir(
        tmp_path,
        {
            "50-limits.py": """\
                from hubext import add_to_community
                c = get_config()

                add_to_community(c, "astro-11", limits={"max_servers": 30})
            """
        },
    )
    assert main(["check-config", str(top)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "hubext: invalid configuration: Communities.additions[0].community: "
        f"add_to_community('astro-11') in {tmp_path}/jupyterhub_config.d/50-limits.py, "
        "line 4: no community 'astro-11' is defined (did you mean 'astro-101'?); "
        "communities: astro-101, ocean-lab. A new community goes in "
        "c.Communities.communities (another file: "
        "c.Communities.communities.update({slug: {...}}))"
    ]


@pytest.mark.e2e
def test_a_hub_takes_keys_added_from_another_file(tmp_path):
    from .harness import RunningHub

    snippet = tmp_path / "50-limits.py"
    snippet.write_text(
        "from hubext import add_to_community\n"
        "c = get_config()\n"
        'add_to_community(c, "astro-101", limits={"max_servers": 7})\n'
    )
    hub = RunningHub(tmp_path / "hub", f"load_subconfig({str(snippet)!r})\n").start()
    try:
        bob = hub.signed_in("bob")
        form = bob.spawn_form().text
        # added to the demo's own limits of the workshop, key by key
        assert "Astronomy 101 (workshop): 0 of 7 servers running." in form
        assert "You: 0 of 1 server charged to Astronomy 101 (workshop)." in form
    finally:
        hub.stop()


@pytest.mark.e2e
def test_a_hub_refuses_keys_added_to_no_community(tmp_path):
    snippet = tmp_path / "50-limits.py"
    snippet.write_text(
        "from hubext import add_to_community\n"
        "c = get_config()\n"
        'add_to_community(c, "astro-11", limits={"max_servers": 7})\n'
    )
    env = DemoEnvironment.with_free_ports(tmp_path / "hub")
    log = tmp_path / "hub.log"
    with open(log, "wb") as out:
        config = write_config(tmp_path, f"load_subconfig({str(snippet)!r})")
        hub = env.start_hub(config, stdout=out, wait=False)
        try:
            returncode = hub.wait(timeout=60)
        finally:
            hub.kill()
    assert returncode == 1
    lines = log.read_text().splitlines()
    critical = [line for line in lines if "hubext: invalid configuration:" in line]
    assert len(critical) == 1, lines[-20:]
    assert (
        f"Communities.additions[0].community: add_to_community('astro-11') in "
        f"{snippet}, line 3: no community 'astro-11' is defined (did you mean "
        "'astro-101'?)" in critical[0]
    )
    assert not [line for line in lines if "Traceback" in line], lines[-20:]
