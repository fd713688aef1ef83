"""The console's page in a real browser (Chromium), on a real hub.

Carol, ocean-lab's admin, finds the console from the hub's navigation bar,
on a page that is the hub's own (its navigation bar, sign-out, styles);
adds an environment through the form (a refusal keeps what she typed and
says why), changes its software environment ("change the image of your
workshop"), offers a bigger size, sets the idle timeout; and the same forms
work with JavaScript turned off. Screenshots go to
test-artifacts/screenshots/ (the how-to's pictures are taken from them).
"""

from __future__ import annotations

import pytest

from hubext.console.store import StateStore
from hubext.database import make_engine

from .browser_kit import SCREENSHOTS
from .console_kit import (
    ACCOUNTS,
    console_config,
    make_software_environment,
    stable_envs_root,
    state_url,
    verify,
)
from .harness import running_hub

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    # the environments under /srv/envs, as on a real hub: the screenshots
    # are the how-to's pictures
    with (
        stable_envs_root() as envs,
        running_hub(
            tmp_path_factory, "console-browser", console_config(envs), ACCOUNTS
        ) as hub,
    ):
        hub.envs = envs
        yield hub


@pytest.fixture
def store(hub):
    store = StateStore(make_engine(state_url(hub)))
    yield store
    store.close()


def signed_in(browser, hub, account, **context_options):
    context = browser.new_context(
        viewport={"width": 1200, "height": 900}, **context_options
    )
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login")
    page.click("a.hubext-provider[data-provider=demo]")
    page.click(f"button[value={account}]")  # the provider's sign-in page
    page.wait_for_url(f"{hub.url}/hub/**")
    return context, page


def shot(page, name):
    page.screenshot(path=SCREENSHOTS / f"console-{name}.png", full_page=True)


def add_form(page):
    return page.locator("form[data-action='environment.add']")


def test_the_console_is_the_hubs_own_page_and_its_forms_work(hub, browser, store):
    workshop = make_software_environment(hub.envs, "ocean-lab", "workshop-2026")
    newer = make_software_environment(hub.envs, "ocean-lab", "workshop-2026b")
    context, page = signed_in(browser, hub, "carol")
    page.goto(f"{hub.url}/hub/home")
    # the hub's navigation bar links to the console for a community admin
    page.click("nav a.hubext-console-link")
    page.wait_for_url(f"{hub.url}/hub/hubext/communities/")
    assert page.locator("table.hubext-communities a").all_inner_texts() == [
        "Ocean Modelling Lab"
    ]
    shot(page, "communities")
    page.click("table.hubext-communities a")
    page.wait_for_url(f"{hub.url}/hub/hubext/communities/ocean-lab/")
    # the hub's page: its navbar, its sign-out button, its style sheet
    assert page.locator("#jupyterhub-logo").count() == 1
    assert page.locator("#logout").inner_text().strip() == "Logout"
    assert page.locator("nav .nav-link", has_text="Home").count() == 1
    assert page.locator("link[href*='css/style.min.css']").count() == 1
    assert page.locator("#noscript").is_hidden()
    assert "Ocean Modelling Lab" in page.locator("h1").inner_text()

    # a refused form keeps what was typed, and says why, at the field
    form = add_form(page)
    form.locator("[name=slug]").fill("workshop")
    form.locator("[name=display_name]").fill("Ocean workshop")
    form.locator("[name=software_environment]").fill("/usr")
    form.locator("input[name=sizes][value=small]").check()
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    form = add_form(page)
    assert form.locator("[name=slug]").input_value() == "workshop"
    assert form.locator("[name=display_name]").input_value() == "Ocean workshop"
    assert form.locator("[name=software_environment]").input_value() == "/usr"
    assert form.locator("input[name=sizes][value=small]").is_checked()
    feedback = form.locator(".invalid-feedback[data-field=software_environment]")
    assert "/usr is not in the directories allowed" in feedback.inner_text()
    shot(page, "refused")
    assert store.read("ocean-lab").version == 0

    # corrected: saved, shown in the list
    form.locator("[name=software_environment]").fill(workshop)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert (
        "Saved: environment.add (version 1)"
        in page.locator(".hubext-saved").inner_text()
    )
    row = page.locator("tr[data-environment=workshop]")
    assert workshop in row.inner_text()
    shot(page, "added")

    # change the environment of the workshop
    row.locator("a", has_text="Edit").click()
    edit = page.locator("form[data-action='environment.edit']")
    edit.locator("[name=software_environment]").fill(newer)
    shot(page, "edit-environment")
    with page.expect_navigation():
        edit.locator("button[type=submit]").click()
    assert newer in page.locator("tr[data-environment=workshop]").inner_text()

    # offer a bigger size (for a week: then untick it again)
    page.locator("tr[data-environment=workshop] a", has_text="Edit").click()
    edit = page.locator("form[data-action='environment.edit']")
    edit.locator("input[name=sizes][value=large]").check()
    edit.locator("select[name=default_size]").select_option("large")
    shot(page, "bigger-size")
    with page.expect_navigation():
        edit.locator("button[type=submit]").click()
    sizes = page.locator("tr[data-environment=workshop] td").nth(2).inner_text()
    assert "8 CPUs, 16 GiB" in sizes and "(first)" in sizes

    # the idle timeout
    page.fill("#idle_timeout", "5400")
    with page.expect_navigation():
        page.click(".hubext-idle-form button[type=submit]")
    assert "5400 seconds" in page.locator("#idle-timeout").inner_text()
    assert "1 hour 30 minutes" in page.locator("#idle-timeout").inner_text()
    assert page.locator("table.hubext-audit tbody tr").count() == 4
    shot(page, "community")

    stored = store.read("ocean-lab")
    assert stored.version == 4
    assert stored.document == {
        "environments": [
            {
                "slug": "workshop",
                "display_name": "Ocean workshop",
                "software_environment": newer,
                "sizes": ["small", "large"],
                "default_size": "large",
            }
        ],
        "idle_timeout": 5400,
    }
    assert verify(hub).returncode == 0
    context.close()


def test_the_forms_work_without_javascript(hub, browser, store):
    env = make_software_environment(hub.envs, "ocean-lab", "no-js")
    # signed in (the provider's page needs no script either), then the same
    # cookies in a browser that runs no script at all
    context, page = signed_in(browser, hub, "carol")
    cookies = context.cookies()
    context.close()
    plain = browser.new_context(java_script_enabled=False)
    plain.add_cookies(cookies)
    page = plain.new_page()
    page.goto(f"{hub.url}/hub/hubext/communities/ocean-lab/")
    before = store.read("ocean-lab").version
    form = add_form(page)
    form.locator("[name=slug]").fill("no-js")
    form.locator("[name=software_environment]").fill(env)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert page.locator("tr[data-environment=no-js]").count() == 1
    # move it up, make it the default, remove it: buttons of plain forms
    with page.expect_navigation():
        page.locator("tr[data-environment=no-js] button[title='Move up']").click()
    first = page.locator("table.hubext-environments tbody tr").first
    assert first.get_attribute("data-environment") == "no-js"
    with page.expect_navigation():
        page.locator(
            "tr[data-environment=no-js] button", has_text="Make default"
        ).click()
    assert "default" in page.locator("tr[data-environment=no-js]").inner_text()
    with page.expect_navigation():
        page.locator("tr[data-environment=no-js] button", has_text="Remove").click()
    assert page.locator("tr[data-environment=no-js]").count() == 0
    shot(page, "no-javascript")
    assert store.read("ocean-lab").version == before + 4
    plain.close()


def test_a_hub_admin_sees_every_community_and_the_whole_audit_log(hub, browser):
    context, page = signed_in(browser, hub, "hal")
    page.goto(f"{hub.url}/hub/home")
    page.click("nav a.hubext-console-link")
    page.wait_for_url(f"{hub.url}/hub/hubext/communities/")
    names = page.locator("table.hubext-communities a").all_inner_texts()
    assert set(names) >= {
        "Ocean Modelling Lab",
        "Astronomy 101 (workshop)",
        "Reading group",
    }
    # the hub's whole audit log is offered to a hub admin only
    assert page.locator("a.hubext-hub-audit").count() == 1
    shot(page, "hub-admin-communities")
    page.click("table.hubext-communities a >> text=Astronomy 101")
    page.wait_for_url(f"{hub.url}/hub/hubext/communities/astro-101/")
    assert page.locator("#logout").count() == 1
    assert page.locator("form[data-action='environment.add']").count() == 1
    context.close()
