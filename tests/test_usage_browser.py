"""Who pays, and what is left, on the spawn form in a real browser (Chromium).

One real hub (hubext-local) for the module. Astronomy 101 may run one server
at a time (``max_servers: 1``). Cy, in both communities, sees the "Usage
charged to" choice under the profile both offer and not under Ocean Lab's
own, charges a server to Astronomy 101 through the form, and the hub keeps
that choice. Bob, in Astronomy 101 only, then sees on the form that its one
server is taken and, submitting anyway, gets the hub's 403 on the page.
Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import pytest

from .browser_kit import SCREENSHOTS
from .harness import running_hub
from .hubclient import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ACCOUNTS = {
    "cy": {
        "preferred_username": "cy",
        "name": "Cy",
        "groups": ["ocean-lab", "astro-101"],
    },
    "bob": {"preferred_username": "bob", "name": "Bob", "groups": ["astro-101"]},
}

CONFIG = """
c.CommunityAuthenticator.admin_users = set()
c.Communities.communities["astro-101"]["limits"] = {"max_servers": 1}
"""

REFUSAL = (
    "Astronomy 101 (workshop) has 1 of its 1 server running (max_servers). "
    "Try again when one of them stops."
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with running_hub(tmp_path_factory, "usage-browser", CONFIG, ACCOUNTS) as hub:
        yield hub


def spawn_form(browser, hub, account):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login")
    page.click("a.hubext-provider[data-provider=demo]")
    page.click(f"button[value={account}]")  # the provider's sign-in page
    page.wait_for_url(f"{hub.url}/hub/**")
    response = page.goto(f"{hub.url}/hub/spawn")
    assert response.status == 200
    return context, page


def pick_profile(page, slug: str) -> str:
    """Click the profile's card; return the text shown in it."""
    card = page.locator(f"label[for=profile-item-{slug}]")
    card.locator("h3").click()
    assert page.is_checked(f"#profile-item-{slug}")
    return card.inner_text()


def submit(page):
    with page.expect_response(
        lambda r: r.request.method == "POST" and "/hub/spawn" in r.url
    ) as answer:
        page.click("#spawn_form button[type=submit]")
    return answer.value


def test_charge_choice_shown_where_two_communities_pay_and_kept(hub, browser):
    context, page = spawn_form(browser, hub, "cy")
    charge = "select[name='profile-option-standard--community']"
    # Ocean Lab's own profile: one community pays, no choice
    assert "Usage charged to" not in pick_profile(page, "ocean-model")
    assert page.locator("select[name$='--community']").count() == 1
    # the standard profile: both offer it, registry order, the first by default
    assert "Usage charged to" in pick_profile(page, "standard")
    assert page.eval_on_selector_all(
        f"{charge} option", "els => els.map(e => [e.value, e.textContent])"
    ) == [
        ["ocean-lab", "Ocean Modelling Lab"],
        ["astro-101", "Astronomy 101 (workshop)"],
    ]
    assert page.input_value(charge) == "ocean-lab"
    page.select_option(charge, "astro-101")
    page.screenshot(path=SCREENSHOTS / "usage-charged-to-choice.png", full_page=True)
    answer = submit(page)
    assert answer.status == 302, answer.status
    context.close()  # not loading JupyterLab
    assert wait_until(
        lambda: hub.api.user("cy")["servers"].get("", {}).get("ready"), timeout=60
    ), hub.api.user("cy")
    options = hub.api.user("cy")["servers"][""]["user_options"]
    assert options["profile"] == "standard"
    assert options["community"] == "astro-101"


@pytest.fixture
def astro_full(hub):
    """Astronomy 101's one server running (cy's, charged to it)."""
    server = hub.api.user("cy")["servers"].get("")
    if server is None:  # this test run alone
        r = hub.api.request(
            "POST",
            "/users/cy/server",
            json={"profile": "standard", "community": "astro-101"},
        )
        assert r.status_code in (201, 202), r.text
        assert wait_until(
            lambda: hub.api.user("cy")["servers"].get("", {}).get("ready"), timeout=60
        )
    else:
        assert server["user_options"]["community"] == "astro-101"


def test_full_community_shown_before_submitting_and_refused_on_the_page(
    hub, browser, astro_full
):
    context, page = spawn_form(browser, hub, "bob")
    left = page.locator(".hubext-limits")
    assert (
        left.inner_text().strip() == "Astronomy 101 (workshop): 1 of 1 server running."
    )
    # above the profiles, inside the form
    assert page.evaluate(
        """() => {
            const left = document.querySelector("#spawn_form .hubext-limits");
            const list = document.querySelector("#kubespawner-profiles-list");
            return !!(left.compareDocumentPosition(list)
                      & Node.DOCUMENT_POSITION_FOLLOWING);
        }"""
    )
    page.screenshot(path=SCREENSHOTS / "limits-what-is-left.png", full_page=True)
    assert page.is_checked("#profile-item-astro-workshop")
    answer = submit(page)
    assert answer.status == 403, answer.status
    page.wait_for_load_state()
    assert REFUSAL in page.inner_text("body")
    assert page.locator("#spawn_form").count() == 1  # the form again
    page.screenshot(path=SCREENSHOTS / "limits-refused-on-form.png", full_page=True)
    context.close()
    assert hub.api.user("bob")["servers"] == {}
