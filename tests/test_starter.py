"""`hubext starter-config`: the starting configurations it writes are valid.

The one-machine ``jupyterhub_config.py`` passes ``hubext check-config``
(and ruff); the z2jh ``values.yaml`` is valid chart input (the chart's
values schema, over its defaults, as helm merges them), its ``hub.config``
and ``singleuser.profileList`` pass the hub's start-up checks, and its
``hub.extraConfig`` runs as the chart runs it (after ``hub.config``). The
command from a wheel, with a real provider's discovery document, is
tests/test_install_from_wheel.py.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from traitlets.config import Config

from demo.services import free_port
from hubext.cli import check_config, main
from hubext.config_files import load_config
from hubext.starter import Failure, settings_from_discovery

from .test_docs import Z2JH, helm_merge

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_one_machine_config_passes_check_config(in_tmp, capsys):
    assert main(["starter-config", "one-machine"]) == 0
    out = capsys.readouterr().out
    # what is still an example is said
    assert "the provider's endpoints, at https://login.example.org" in out
    assert "https://hub.example.org/hub/oidc/oauth_callback" in out
    config = in_tmp / "jupyterhub_config.py"
    result = subprocess.run(
        [sys.executable, "-m", "hubext.cli", "check-config", str(config)],
        env={**os.environ, "HUBEXT_OIDC_CLIENT_SECRET": "not-a-real-secret"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "example-lab  Example Lab" in result.stdout
    assert "1 community; configuration is valid." in result.stdout


def test_one_machine_config_keeps_the_hubs_state_beside_itself(in_tmp, monkeypatch):
    assert main(["starter-config", "one-machine", "-o", "hub/config.py"]) == 1
    (in_tmp / "hub").mkdir()
    assert main(["starter-config", "one-machine", "-o", "hub/config.py"]) == 0
    monkeypatch.setenv("HUBEXT_OIDC_CLIENT_SECRET", "not-a-real-secret")
    config = load_config(str(in_tmp / "hub" / "config.py"))
    here = str((in_tmp / "hub").resolve())
    assert config.LocalCommunitySpawner.home_root == f"{here}/homes"
    assert config.JupyterHub.db_url == f"sqlite:///{here}/jupyterhub.sqlite"
    assert config.JupyterHub.cookie_secret_file == f"{here}/jupyterhub_cookie_secret"
    folder = config.Communities.communities["example-lab"]["shared_data"][0]
    assert folder["source"] == {"host_path": f"{here}/shared/example-lab/data"}
    assert config.LocalCommunitySpawner.run_as_system_users is False
    # the secret is read from the environment, never written
    assert "not-a-real-secret" not in (in_tmp / "hub" / "config.py").read_text()
    # the culler runs, with the community's policy handed over by the hub
    services = config.JupyterHub.services.to_dict()["extend"]
    assert [s["name"] for s in services] == ["hubext-culler"]


def test_one_machine_config_is_clean_python(in_tmp):
    assert main(["starter-config", "one-machine"]) == 0
    ruff = Path(sys.executable).parent / "ruff"
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [str(ruff), *command, "--config", str(REPO / "pyproject.toml"), "."],
            cwd=in_tmp,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def chart():
    schema = yaml.safe_load((Z2JH / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((Z2JH / "values.yaml").read_text())
    return schema, defaults


def z2jh_hub_config(values: dict) -> Config:
    """The hub's configuration from chart values, loaded in the chart's order:
    hub.config, singleuser.profileList, then hub.extraConfig executed."""
    config = Config(copy.deepcopy(values["hub"]["config"]))
    config.KubeSpawner.profile_list = values["singleuser"]["profileList"]
    for _, code in sorted(values["hub"].get("extraConfig", {}).items()):
        exec(code, {"c": config})
    return config


def test_z2jh_values_are_valid_chart_input(in_tmp, chart, monkeypatch):
    assert main(["starter-config", "z2jh"]) == 0
    values = yaml.safe_load((in_tmp / "values.yaml").read_text())
    schema, defaults = chart
    jsonschema.validate(helm_merge(defaults, values), schema)
    assert values["cull"] == {"enabled": False}  # hubext's culler instead
    assert values["hub"]["image"]["name"] == "registry.example.org/hubext-hub"
    secret = values["hub"]["extraEnv"]["HUBEXT_OIDC_CLIENT_SECRET"]
    assert secret["valueFrom"]["secretKeyRef"] == {
        "name": "hubext-oidc",
        "key": "client-secret",
    }

    monkeypatch.setenv("HUBEXT_OIDC_CLIENT_SECRET", "from-the-kubernetes-secret")
    config = z2jh_hub_config(values)
    communities = check_config(config)
    assert [c.slug for c in communities] == ["example-lab"]
    provider = config.CommunityAuthenticator.providers["oidc"]["config"]
    assert provider["client_secret"] == "from-the-kubernetes-secret"
    services = config.JupyterHub.services.to_dict()["extend"]
    assert [s["name"] for s in services] == ["hubext-culler"]
    assert "from-the-kubernetes-secret" not in (in_tmp / "values.yaml").read_text()


def test_options_fill_in_the_hub_and_client(in_tmp):
    assert (
        main(
            [
                "starter-config",
                "z2jh",
                "--hub-url",
                "https://jupyter.uni.example/",
                "--client-id",
                "jupyter-hub",
            ]
        )
        == 0
    )
    values = yaml.safe_load((in_tmp / "values.yaml").read_text())
    config = values["hub"]["config"]["CommunityAuthenticator"]["providers"]["oidc"]
    assert config["config"]["oauth_callback_url"] == (
        "https://jupyter.uni.example/hub/oidc/oauth_callback"
    )
    assert config["config"]["client_id"] == "jupyter-hub"


def test_an_existing_file_is_replaced_only_with_force(in_tmp, capsys):
    target = in_tmp / "values.yaml"
    target.write_text("mine\n")
    assert main(["starter-config", "z2jh"]) == 1
    assert "values.yaml exists; --force replaces it" in capsys.readouterr().err
    assert target.read_text() == "mine\n"
    assert main(["starter-config", "z2jh", "--force"]) == 0
    assert target.read_text().startswith("# hubext on zero-to-jupyterhub")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--hub-url", "http://hub.example.org"],
            "--hub-url: 'http://hub.example.org' is plain http; use https",
            id="plain-http-hub",
        ),
        pytest.param(
            ["--oidc-issuer", "login.example.org"],
            "--oidc-issuer: expected an https:// URL, got 'login.example.org'",
            id="no-scheme",
        ),
        pytest.param(
            ["--hub-url", "https://hub.example.org/?x=1"],
            "--hub-url: no query or fragment expected",
            id="query",
        ),
        pytest.param(
            ["--client-id", "my hub"],
            "--client-id: expected the client's id at the provider",
            id="client-id-with-space",
        ),
    ],
)
def test_bad_arguments_are_refused(in_tmp, capsys, args, message):
    assert main(["starter-config", "one-machine", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hubext: {message}"), err
    assert len(err.splitlines()) == 1
    assert not (in_tmp / "jupyterhub_config.py").exists()


def test_an_unreachable_provider_is_one_line(in_tmp, capsys):
    issuer = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["starter-config", "one-machine", "--oidc-issuer", issuer]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"hubext: cannot read {issuer}/.well-known/openid-configuration: "
        "ConnectionError\n"
    )
    assert not (in_tmp / "jupyterhub_config.py").exists()


ISSUER = "https://login.uni.example/realms/hub"
DOCUMENT = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/protocol/openid-connect/auth",
    "token_endpoint": f"{ISSUER}/protocol/openid-connect/token",
    "userinfo_endpoint": f"{ISSUER}/protocol/openid-connect/userinfo",
    "end_session_endpoint": f"{ISSUER}/protocol/openid-connect/logout",
    "scopes_supported": ["openid", "email", "profile", "groups"],
}


def test_discovery_fills_in_the_endpoints():
    endpoints, scope = settings_from_discovery(ISSUER, DOCUMENT)
    assert endpoints == {
        "authorize_url": DOCUMENT["authorization_endpoint"],
        "token_url": DOCUMENT["token_endpoint"],
        "userdata_url": DOCUMENT["userinfo_endpoint"],
        "end_session_url": DOCUMENT["end_session_endpoint"],
    }
    assert scope == ["openid", "email", "profile", "groups"]


def test_groups_scope_only_where_the_provider_has_it():
    document = {**DOCUMENT, "scopes_supported": ["openid", "email", "profile"]}
    assert settings_from_discovery(ISSUER, document)[1] == [
        "openid",
        "email",
        "profile",
    ]
    without_list = {k: v for k, v in DOCUMENT.items() if k != "scopes_supported"}
    assert "groups" in settings_from_discovery(ISSUER, without_list)[1]


def test_no_end_session_endpoint_is_fine():
    document = {k: v for k, v in DOCUMENT.items() if k != "end_session_endpoint"}
    assert "end_session_url" not in settings_from_discovery(ISSUER, document)[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"issuer": "https://evil.example"},
            "the provider's issuer is 'https://evil.example', not",
            id="other-issuer",
        ),
        pytest.param(
            {"userinfo_endpoint": None},
            "no userinfo_endpoint; hubext needs it",
            id="no-userinfo",
        ),
        pytest.param(
            {"token_endpoint": "http://login.uni.example/token"},
            "token_endpoint: 'http://login.uni.example/token' is plain http",
            id="plain-http-endpoint",
        ),
    ],
)
def test_a_bad_discovery_document_is_refused(change, message):
    document = {k: v for k, v in {**DOCUMENT, **change}.items() if v is not None}
    with pytest.raises(Failure, match=message):
        settings_from_discovery(ISSUER, document)


def test_a_discovery_document_must_be_an_object():
    with pytest.raises(Failure, match="not a discovery document"):
        settings_from_discovery(ISSUER, ["not", "an", "object"])
