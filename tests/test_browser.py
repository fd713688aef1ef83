"""The spawn form in a real browser: Debian's chromium driven by playwright.

Screenshots are kept in test-artifacts/screenshots/ for people to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .browser_kit import SCREENSHOTS
from .harness import running_hub

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


ACCOUNTS = {
    "alice": {"preferred_username": "alice", "name": "Alice", "groups": ["ocean-lab"]},
    "bob": {"preferred_username": "bob", "name": "Bob", "groups": ["astro-101"]},
    "cy": {
        "preferred_username": "cy",
        "name": "Cy",
        "groups": ["astro-101", "ocean-lab"],
    },
    "zed": {"preferred_username": "zed", "name": "Zed", "groups": ["empty-club"]},
}

CONFIG = """
c.CommunityAuthenticator.admin_users = set()
c.Communities.communities["empty-club"] = {
    "display_name": "A community without server options",
    "members": [{"provider": "demo", "group": "empty-club"}],
}
c.LocalCommunitySpawner.profile_list[0]["allowed_groups"] = ["ocean-lab", "astro-101"]
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with running_hub(tmp_path_factory, "browser", CONFIG, ACCOUNTS) as hub:
        yield hub


def sign_in(browser, hub, account):
    page = browser.new_context().new_page()
    page.goto(f"{hub.url}/hub/login")
    page.click("a.hubext-provider[data-provider=demo]")
    page.click(f"button[value={account}]")  # the provider's sign-in page
    page.wait_for_url(f"{hub.url}/hub/**")
    return page


def spawn_page(browser, hub, account):
    page = sign_in(browser, hub, account)
    response = page.goto(f"{hub.url}/hub/spawn")
    return page, response


def shown_profiles(page) -> list[str]:
    return page.eval_on_selector_all(
        "input[name=profile]", "els => els.map(e => e.value)"
    )


@pytest.mark.parametrize(
    ("account", "profiles", "selected"),
    [
        pytest.param(
            "alice", ["standard", "ocean-model"], "ocean-model", id="member-of-ocean"
        ),
        pytest.param(
            "bob",
            ["standard", "astro-workshop"],
            "astro-workshop",
            id="member-of-astro",
        ),
        pytest.param(
            "cy",
            ["standard", "ocean-model", "astro-workshop"],
            "ocean-model",
            id="member-of-both",
        ),
    ],
)
def test_each_member_sees_their_profiles(hub, browser, account, profiles, selected):
    page, response = spawn_page(browser, hub, account)
    assert response.status == 200
    assert shown_profiles(page) == profiles
    assert (
        page.eval_on_selector("input[name=profile]:checked", "e => e.value") == selected
    )
    page.screenshot(path=SCREENSHOTS / f"spawn-form-{account}.png", full_page=True)


def test_no_profile_page(hub, browser):
    page, response = spawn_page(browser, hub, "zed")
    assert response.status == 403
    assert "Your communities (empty-club) have no server options" in page.content()
    page.screenshot(path=SCREENSHOTS / "no-profile-403.png", full_page=True)


def test_bad_choice_is_answered_on_the_page(hub, browser):
    page, _ = spawn_page(browser, hub, "bob")
    # A person editing the page offers a choice bob may not use.
    page.evaluate(
        """() => {
            const select = document.querySelector(
                "select[name='profile-option-standard--threads']");
            select.add(new Option("8 threads", "8"));
            select.value = "8";
            document.querySelector("#profile-item-standard").checked = true;
        }"""
    )
    page.click("#spawn_form button[type=submit]")
    page.wait_for_load_state()
    text = page.inner_text("body")
    assert "The choice '8' for 'Threads' is not available to your communities" in text
    assert page.locator("#spawn_form").count() == 1  # the form again
    page.screenshot(path=SCREENSHOTS / "bad-choice-refused.png", full_page=True)
    assert not hub.api.user("bob")["servers"]


def test_free_text_is_checked_on_the_server(hub, browser):
    page, _ = spawn_page(browser, hub, "alice")
    page.check("#profile-item-ocean-model")
    page.select_option(
        "select[name='profile-option-ocean-model--dataset']", "unlisted-choice"
    )
    field = "#profile-option-ocean-model--dataset--unlisted-choice"
    # Remove the browser-side pattern check, as a person can.
    page.evaluate(f"document.querySelector('{field}').removeAttribute('pattern')")
    page.fill(field, "{username}")
    page.click("#spawn_form button[type=submit]")
    page.wait_for_load_state()
    assert "must not contain" in page.inner_text("body")
    page.screenshot(path=SCREENSHOTS / "template-injection-refused.png", full_page=True)
    assert not hub.api.user("alice")["servers"]
    # the form again, with what she chose and typed, to correct it
    assert page.is_checked("#profile-item-ocean-model")
    select = "select#profile-option-ocean-model--dataset"
    assert page.eval_on_selector(select, "e => e.value") == "unlisted-choice"
    assert page.input_value(field) == "{username}"
    assert page.is_visible(field)


def test_free_text_pattern_works_in_the_browser(hub, browser):
    """The rendered pattern is a valid browser regex (v flag) that checks."""
    page = sign_in(browser, hub, "alice")
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{hub.url}/hub/spawn")
    page.check("#profile-item-ocean-model")
    page.select_option(
        "select[name='profile-option-ocean-model--dataset']", "unlisted-choice"
    )
    field = "#profile-option-ocean-model--dataset--unlisted-choice"
    assert page.get_attribute(field, "pattern")
    valid = {}
    for text in ["my-floats", "argo-2", "Bad Value!", "a" * 41, "{username}"]:
        page.fill(field, text)
        valid[text] = page.eval_on_selector(field, "e => e.checkValidity()")
    assert valid == {
        "my-floats": True,
        "argo-2": True,
        "Bad Value!": False,
        "a" * 41: False,
        "{username}": False,
    }
    # the browser stops a bad value before it is sent
    page.fill(field, "Bad Value!")
    page.click("#spawn_form button[type=submit]")
    assert page.url == f"{hub.url}/hub/spawn"
    assert page.eval_on_selector(field, "e => e.validationMessage")
    assert problems == []
    assert not hub.api.user("alice")["servers"]


KUBE_CONFIG = f"""
from jupyterhub_fancy_profiles import setup_ui

# KubeSpawner reads a kubeconfig when a spawner is built; no cluster is
# needed to render the form.
import kubernetes_asyncio.config.kube_config as kube_config

kube_config.KUBE_CONFIG_DEFAULT_LOCATION = {str(Path(__file__).parent / "data" / "kubeconfig.yaml")!r}
c.JupyterHub.spawner_class = "hubext-kube"
# the demo's hubext-local settings, which hubext-kube would ignore (refused)
del c["LocalCommunitySpawner"]
c.KubeSpawner.profile_list = [
    {{"display_name": "Standard", "slug": "standard",
      "kubespawner_override": {{"image": "quay.io/jupyter/base-notebook:2024-12-02"}}}},
    {{"display_name": "Ocean model run", "slug": "ocean-model", "allowed_groups": ["ocean-lab"],
      "profile_options": {{"image": {{"display_name": "Image", "choices": {{
          "scipy": {{"display_name": "SciPy", "kubespawner_override": {{"image": "quay.io/jupyter/scipy-notebook:2024-12-02"}}}},
      }}}}}}}},
    {{"display_name": "Astronomy 101 workshop", "slug": "astro-workshop", "allowed_groups": ["astro-101"]}},
]
c.CommunityAuthenticator.admin_users = set()
setup_ui(c)
"""


@pytest.fixture(scope="module")
def kube_hub(tmp_path_factory):
    with running_hub(tmp_path_factory, "fancy", KUBE_CONFIG, ACCOUNTS) as hub:
        yield hub


@pytest.mark.parametrize(
    ("account", "shown", "hidden"),
    [
        pytest.param(
            "alice",
            ["Standard", "Ocean model run"],
            ["Astronomy 101 workshop"],
            id="ocean",
        ),
        pytest.param(
            "bob",
            ["Standard", "Astronomy 101 workshop"],
            ["Ocean model run"],
            id="astro",
        ),
    ],
)
def test_fancy_profiles_on_the_kubernetes_spawner(
    kube_hub, browser, account, shown, hidden
):
    page, response = spawn_page(browser, kube_hub, account)
    assert response.status == 200
    # the React form renders the user's own list, not the configured one
    page.wait_for_selector(".loader-wrapper", state="detached", timeout=15000)
    slugs = page.evaluate("window.profileList.map(p => p.slug)")
    assert len(slugs) == len(shown)
    text = page.inner_text("#form")
    for name in shown:
        assert name in text
    for name in hidden:
        assert name not in text
    page.screenshot(path=SCREENSHOTS / f"fancy-profiles-{account}.png", full_page=True)


def test_signing_out_lets_another_account_sign_in(hub, browser):
    """Signing out of the hub ends the demo provider's session too (OpenID
    Connect RP-initiated logout, no question asked), so one browser can try
    every sample account."""
    page = sign_in(browser, hub, "alice")
    idp = hub.env.idp_url
    discovery = page.request.get(f"{idp}/.well-known/openid-configuration").json()
    assert discovery["end_session_endpoint"] == f"{idp}/session/end"
    assert page.request.get(f"{hub.url}/hub/api/user").json()["name"] == "alice"

    page.goto(f"{hub.url}/hub/logout")
    page.wait_for_url(f"{hub.url}/hub/login**")
    page.click("a.hubext-provider[data-provider=demo]")
    page.click("button[value=bob]")  # the provider asks again: another account
    page.wait_for_url(f"{hub.url}/hub/**")
    assert page.request.get(f"{hub.url}/hub/api/user").json()["name"] == "bob"
