"""The console's pages and REST API, served by the hub (hubext's authenticator
registers them when the hub registered the console).

REST API, under the hub's prefix (``/hub/``), documented with examples in
``docs/reference/console-api.md``:

=======================================================  =====================
``GET api/hubext/communities``                           the communities the caller may read
``GET api/hubext/communities/<slug>``                    one community: bounds, settings, attention, members, limits and use
``GET api/hubext/communities/<slug>/members``            its members and why each is one
``GET|PUT api/hubext/communities/<slug>/settings``       the stored settings; replace them whole
``POST api/hubext/communities/<slug>/environments``      add an environment
``PUT|DELETE .../environments/<env>``                    change or remove one
``PUT api/hubext/communities/<slug>/order``              order the environments
``PUT api/hubext/communities/<slug>/default``            the default environment
``PUT api/hubext/communities/<slug>/idle-timeout``       the idle timeout
``GET api/hubext/communities/<slug>/audit``              its audit log (JSON, or CSV)
``GET api/hubext/audit``                                 the whole audit log (unfiltered read only)
=======================================================  =====================

Pages: ``hubext/communities/`` and ``hubext/communities/<slug>/`` (forms that
POST the same changes, with the hub's XSRF token; no JavaScript needed).

- Who may do what is JupyterHub's decision (:mod:`.access`), made before
  anything is read: 404 for a community the caller may not read (or that
  does not exist), 403 without a console scope.
- A slug in a URL is matched as it is sent: lowercase letters, digits and
  ``-``, no percent-encoding; any other form (another case, ``%2D``, a
  look-alike character, a trailing ``/`` on the API, ``..``) matches no
  route and is a 404.
- Every change names the version of the settings it was made on: 409 with
  the current version when they changed since. A change outside the
  operator's bounds is a 400 naming each field and the bound it breaks
  (:mod:`.edits`), and nothing is written. An accepted change is one
  transaction with its audit row (:meth:`~.store.StateStore.change`); a
  refused one writes nothing (the hub's log has a line).
- The store is called in a thread, never on the hub's event loop.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from jupyterhub.apihandlers import APIHandler
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop

from .._validation import ConfigError, show
from ..communities import Community
from ..delegated import ROOT, Environment
from ..usage.command import UsageError, parse_moment
from .access import (
    ADMIN_SCOPE,
    NOT_FOUND,
    READ_SCOPE,
    actor_of,
    holds,
    holds_all,
    readable,
    require,
    require_all,
    require_some,
)
from .chain import AuditRow
from .command import format_csv
from .edits import (
    ADD,
    DEFAULT,
    EDIT,
    IDLE_TIMEOUT,
    REMOVE,
    Edit,
    EditError,
    add_environment,
    edit_environment,
    field_of,
    problems,
    remove_environment,
    reorder_environments,
    replace,
    set_default,
    set_idle_timeout,
)
from .hub import HubConsole
from .members import members_of, read_members
from .store import StateStore, VersionConflict
from .view import (
    bounds_json,
    delegated_parts,
    duration_words,
    error_json,
    limits_json,
    member_json,
    needs_attention,
    settings_json,
    use_lines,
    used_json,
    why_words,
)

#: A community's slug as it must appear in a URL (raw, not decoded).
SLUG = r"[a-z0-9-]{1,63}"
#: An environment's slug as it must appear in a URL.
ENV = r"[a-z0-9-]{1,40}"
#: Rows of the audit log an answer holds at most (``limit``), and by default.
MAX_AUDIT_ROWS = 10_000
DEFAULT_AUDIT_ROWS = 1000
#: Rows of the audit log the community's page shows.
PAGE_AUDIT_ROWS = 50
#: Every answer: a community's settings and members are private.
CACHE_CONTROL = "private, no-store"


class ConsoleError(web.HTTPError):
    """A refused request: its status, a message, the fields at fault."""

    def __init__(
        self, status: int, message: str, errors: list[dict] = (), **extra: Any
    ) -> None:
        super().__init__(status, "%s", message)
        self.message = message
        self.errors = list(errors)
        self.extra = extra


def _refused(errors: list[ConfigError]) -> ConsoleError:
    return ConsoleError(
        400,
        "; ".join(str(e) for e in errors),
        [error_json(e) for e in errors],
    )


def _conflict(community: str, expected: int, current: int) -> ConsoleError:
    return ConsoleError(
        409,
        str(VersionConflict(community, expected, current)),
        [
            {
                "field": "version",
                "message": f"the settings are at version {current}, not {expected}",
            }
        ],
        current_version=current,
    )


def _version(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ConsoleError(
            400,
            f"version: the version of the settings the change is made on "
            f"(a whole number from GET), got {show(value)}",
            [{"field": "version", "message": "required: the version read"}],
        )
    return value


def _query_version(handler: web.RequestHandler, allowed: bool) -> int | None:
    """``?version=N`` (a DELETE may name its version there instead of in a
    body, which some clients cannot send); None when absent."""
    raw = handler.request.query_arguments.get("version")
    if raw is None:
        return None
    if not allowed:
        raise ConsoleError(
            400,
            "version: give the version in the JSON body (only a DELETE takes "
            "?version=)",
            [{"field": "version", "message": "in the body, not the query string"}],
        )
    value = raw[-1].decode("utf8", "replace")
    if len(raw) > 1 or not re.fullmatch(r"[0-9]{1,18}", value):
        raise ConsoleError(
            400,
            f"version: ?version= takes one whole number (the version from GET), "
            f"got {show([v.decode('utf8', 'replace') for v in raw])}",
            [{"field": "version", "message": "one whole number"}],
        )
    return int(value)


class ConsoleMixin:
    """What the console's pages and API share (tornado's ``initialize``
    gets the :class:`~.hub.HubConsole`)."""

    console: HubConsole

    def initialize(self, console: HubConsole) -> None:
        self.console = console

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", CACHE_CONTROL)

    async def run(self, function: Callable, *args, **kwargs):
        """``function`` in a thread (the store blocks)."""
        return await IOLoop.current().run_in_executor(
            None, functools.partial(function, *args, **kwargs)
        )

    @property
    def store(self) -> StateStore:
        if self.console.store is None:
            raise ConsoleError(
                503,
                "the communities' settings cannot be read now (the hub's log says why)",
            )
        return self.console.store

    def community(self, slug: str, scope: str) -> Community:
        """The community ``slug`` if the request holds ``scope`` on it
        (JupyterHub's 403 or 404 otherwise; 404 when there is none)."""
        require(self, scope, slug)
        community = self.console.communities.get(slug)
        if community is None:
            raise ConsoleError(404, NOT_FOUND)
        return community

    def can_change(self, community: Community) -> bool:
        return bool(
            holds(self, ADMIN_SCOPE, community.slug)
            and delegated_parts(self.console.bounds(community))
            and self.console.store is not None
        )

    def page_url(self, community: str = "") -> str:
        """The console's page (of ``community``), with its ``/``."""
        return url_path_join(self.hub.base_url, "hubext/communities", community) + "/"

    def api_url(self, *parts: str) -> str:
        return url_path_join(self.hub.base_url, "api/hubext/communities", *parts)

    # -- reading ----------------------------------------------------------------

    async def community_model(self, community: Community) -> dict[str, Any]:
        """Everything the console shows of ``community`` (the API's GET)."""
        slug = community.slug
        service = self.console.bounds(community)
        stored = await self.run(self.store.read, slug)
        attention, applied = needs_attention(
            stored.document, service, self.console.kind
        )
        rows = read_members(self.db, slug)
        members = await self.run(members_of, rows)
        limits = self.console.limits(slug)
        servers = self.console.servers
        running = servers.running(slug) if servers is not None else None
        spent = None
        if servers is not None and limits.budget is not None:
            use = await servers.budget_use(slug, "", limits.budget)
            spent = {unit: hours for (unit, mine), hours in use.items() if not mine}
        culling = community.culling or {}
        return {
            "slug": slug,
            "display_name": community.display_name,
            "can_change": self.can_change(community),
            "delegates": delegated_parts(service),
            "spawner_kind": self.console.kind,
            "bounds": bounds_json(service),
            "settings": settings_json(stored.document, stored.version),
            "applied": applied,
            "needs_attention": attention,
            "configured": {"idle_timeout": culling.get("idle_timeout")},
            "members": [member_json(community, m) for m in members],
            "limits": limits_json(limits),
            "used": used_json(running, spent),
            "links": {
                "page": self.page_url(slug),
                "api": self.api_url(slug),
                "members": self.api_url(slug, "members"),
                "audit": self.api_url(slug, "audit"),
            },
        }

    def summary(self, community: Community) -> dict[str, Any]:
        """A community in the list of communities (no I/O)."""
        return {
            "slug": community.slug,
            "display_name": community.display_name,
            "can_change": self.can_change(community),
            "delegates": delegated_parts(self.console.bounds(community)),
            "links": {
                "page": self.page_url(community.slug),
                "api": self.api_url(community.slug),
            },
        }

    # -- changing -----------------------------------------------------------------

    async def change(
        self, community: Community, version: int, make_edit: Callable[[Any], Edit]
    ) -> tuple[AuditRow, Edit]:
        """Make, check and store one change (the caller checked the admin scope)."""
        service = self.console.bounds(community)
        if not delegated_parts(service):
            raise ConsoleError(
                403,
                f"{community.display_name}'s settings are the operator's: its "
                "self_service delegates nothing to its admins",
            )
        store = self.store
        stored = await self.run(store.read, community.slug)
        if stored.version != version:
            raise _conflict(community.slug, version, stored.version)
        try:
            edit = make_edit(stored.document)
        except EditError as e:
            raise ConsoleError(
                e.status, str(e), [{"field": e.field, "message": e.message}]
            ) from None
        kind = self.console.kind or "local"
        errors = problems(edit, service, kind)
        if not errors and kind == "local":
            errors = await self.machine_check(community, edit)
        if errors:
            raise _refused(errors)
        actor, actor_kind = actor_of(self)
        try:
            row = await self.run(
                store.change,
                community.slug,
                version,
                edit.document,
                actor=actor,
                actor_kind=actor_kind,
                action=edit.action,
            )
        except VersionConflict as e:
            raise _conflict(community.slug, version, e.current) from None
        except ValueError as e:
            raise ConsoleError(400, str(e)) from None
        return row, edit

    async def machine_check(
        self, community: Community, edit: Edit
    ) -> list[ConfigError]:
        """The spawner's check of the software environments the edit touches
        (the directory on the machine), when it has one."""
        check = self.console.software_check
        if check is None:
            return []
        # as the admin's system user when servers run as their users (a
        # service's token: as the hub's user)
        actor, actor_kind = actor_of(self)
        username = actor if actor_kind == "user" else None
        errors = []
        for i, entry in enumerate(edit.document.get("environments") or []):
            where = ROOT.attr("environments")[i]
            if not edit.concerns(str(where)) or not isinstance(entry, dict):
                continue
            path = entry.get("software_environment")
            if isinstance(path, str):
                environment = Environment(
                    slug=str(entry.get("slug", "")),
                    display_name=str(entry.get("display_name") or entry.get("slug")),
                    software_environment=path,
                )
                problem = await self.run(check, community, environment, username)
                if problem:
                    errors.append(
                        ConfigError(where.attr("software_environment"), problem)
                    )
        return errors

    def log_refusal(self, community: str, what: str, error: ConsoleError) -> None:
        actor, actor_kind = actor_of(self)
        self.log.info(
            "hubext console: refused (%d) %s in %s by %s %s: %s",
            error.status_code,
            what,
            community,
            actor_kind,
            show(actor),
            "; ".join(e["field"] for e in error.errors) or error.message[:200],
        )


# -- the REST API -------------------------------------------------------------------


class ConsoleAPIHandler(ConsoleMixin, APIHandler):
    """JSON answers; errors with the fields at fault."""

    def write_error(self, status_code: int, **kwargs) -> None:
        exception = (kwargs.get("exc_info") or (None, None, None))[1]
        if not isinstance(exception, ConsoleError):
            return super().write_error(status_code, **kwargs)
        self.set_header("Content-Type", "application/json")
        self.clear_header("Content-Length")
        self.finish(
            json.dumps(
                {
                    "status": status_code,
                    "message": exception.message,
                    **({"errors": exception.errors} if exception.errors else {}),
                    **exception.extra,
                }
            )
        )

    def body(self, allowed: tuple[str, ...] | None) -> dict[str, Any]:
        """The request's JSON object, with only ``allowed`` keys (None: any)."""
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError as e:
            raise ConsoleError(400, f"the body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise ConsoleError(400, f"expected a JSON object, got {show(body)}")
        unknown = sorted(set(body) - set(allowed)) if allowed is not None else []
        if unknown:
            raise ConsoleError(
                400,
                f"unknown keys {', '.join(show(k) for k in unknown)}; known: "
                f"{', '.join(allowed)}",
                [{"field": k, "message": "unknown key"} for k in unknown],
            )
        return body

    async def respond_change(
        self,
        slug: str,
        keys: tuple[str, ...] | None,
        make_edit,
        *,
        status: int = 200,
        version_in_query: bool = False,
    ) -> None:
        """Make the change the request's body asks for (``keys``: the body's
        keys besides ``version``; None: any, checked by the edit).
        ``version_in_query``: the version may be ``?version=N`` instead, with
        no body (a DELETE); given in both, they must agree."""
        community = self.community(slug, ADMIN_SCOPE)
        try:
            in_query = _query_version(self, version_in_query)
            if in_query is not None and not self.request.body.strip():
                body = {}
            else:
                body = self.body(None if keys is None else ("version", *keys))
            if (
                in_query is not None
                and "version" in body
                and (body["version"] != in_query or type(body["version"]) is not int)
            ):
                raise ConsoleError(
                    400,
                    f"version: the body says {show(body['version'])}, "
                    f"?version= says {in_query}; give one, or the same",
                    [{"field": "version", "message": "body and query differ"}],
                )
            version = body.get("version", in_query)
            row, edit = await self.change(
                community,
                _version(version),
                lambda document: make_edit(document, body),
            )
        except ConsoleError as e:
            self.log_refusal(slug, self.request.method + " " + self.request.path, e)
            raise
        self.set_status(status)
        self.finish(
            {
                "settings": settings_json(edit.document, row.version),
                "audit": {"seq": row.seq, "action": row.action, "hash": row.hash},
            }
        )


class CommunitiesAPIHandler(ConsoleAPIHandler):
    async def get(self):
        require_some(self, READ_SCOPE)
        slugs = readable(self, self.console.communities)
        self.finish(
            {"communities": [self.summary(self.console.communities[s]) for s in slugs]}
        )


class CommunityAPIHandler(ConsoleAPIHandler):
    async def get(self, slug: str):
        community = self.community(slug, READ_SCOPE)
        self.finish(await self.community_model(community))


class MembersAPIHandler(ConsoleAPIHandler):
    """A community's members and why each is one (the invitations of #23 add
    their own ``source`` and routes beside this one)."""

    async def get(self, slug: str):
        community = self.community(slug, READ_SCOPE)
        members = await self.run(members_of, read_members(self.db, community.slug))
        self.finish({"members": [member_json(community, m) for m in members]})


class SettingsAPIHandler(ConsoleAPIHandler):
    async def get(self, slug: str):
        community = self.community(slug, READ_SCOPE)
        stored = await self.run(self.store.read, community.slug)
        self.finish(settings_json(stored.document, stored.version))

    async def put(self, slug: str):
        await self.respond_change(
            slug,
            None,  # the document's keys are checked as its own
            lambda document, body: replace(
                document, {k: v for k, v in body.items() if k != "version"}
            ),
        )


class EnvironmentsAPIHandler(ConsoleAPIHandler):
    async def post(self, slug: str):
        await self.respond_change(
            slug,
            ("environment",),
            lambda document, body: add_environment(document, body.get("environment")),
            status=201,
        )


class EnvironmentAPIHandler(ConsoleAPIHandler):
    async def put(self, slug: str, environment: str):
        await self.respond_change(
            slug,
            ("environment",),
            lambda document, body: edit_environment(
                document, environment, body.get("environment")
            ),
        )

    async def delete(self, slug: str, environment: str):
        await self.respond_change(
            slug,
            (),
            lambda document, body: remove_environment(document, environment),
            version_in_query=True,
        )


class OrderAPIHandler(ConsoleAPIHandler):
    async def put(self, slug: str):
        await self.respond_change(
            slug,
            ("order",),
            lambda document, body: reorder_environments(document, body.get("order")),
        )


class DefaultAPIHandler(ConsoleAPIHandler):
    async def put(self, slug: str):
        await self.respond_change(
            slug,
            ("default",),
            lambda document, body: set_default(document, body.get("default")),
        )


class IdleTimeoutAPIHandler(ConsoleAPIHandler):
    async def put(self, slug: str):
        await self.respond_change(
            slug,
            ("idle_timeout",),
            lambda document, body: set_idle_timeout(document, body.get("idle_timeout")),
        )


class AuditQuery:
    """``?after=<seq>&limit=<n>&since=<date>&format=json|csv``, checked."""

    def __init__(self, handler: APIHandler) -> None:
        def number(name: str, default: int, low: int, high: int) -> int:
            raw = handler.get_query_argument(name, None)
            if raw is None:
                return default
            if not raw.isdigit() or not low <= int(raw) <= high:
                raise ConsoleError(
                    400,
                    f"{name}: a whole number from {low} to {high}, got {show(raw)}",
                    [
                        {
                            "field": name,
                            "message": f"a whole number from {low} to {high}",
                        }
                    ],
                )
            return int(raw)

        self.after = number("after", 0, 0, 2**62)
        self.limit = number("limit", DEFAULT_AUDIT_ROWS, 1, MAX_AUDIT_ROWS)
        since = handler.get_query_argument("since", None)
        try:
            self.since = parse_moment(since, "since") if since else None
        except UsageError as e:
            raise ConsoleError(
                400, str(e), [{"field": "since", "message": str(e)}]
            ) from None
        self.format = handler.get_query_argument("format", None)
        if self.format is None:
            accept = handler.request.headers.get("Accept", "")
            self.format = "csv" if "text/csv" in accept else "json"
        if self.format not in ("json", "csv"):
            raise ConsoleError(
                400,
                f"format: json or csv, got {show(self.format)}",
                [{"field": "format", "message": "json or csv"}],
            )


class _AuditAnswer(ConsoleAPIHandler):
    async def answer(self, community: str | None, name: str) -> None:
        query = AuditQuery(self)
        rows = await self.run(
            self.store.audit,
            community,
            query.since,
            after_seq=query.after,
            limit=query.limit,
        )
        if query.format == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header(
                "Content-Disposition", f'attachment; filename="audit-{name}.csv"'
            )
            self.finish(format_csv(rows) + "\n")
            return
        self.finish(
            {
                "rows": [row.as_json() for row in rows],
                "next_after": rows[-1].seq if len(rows) == query.limit else None,
            }
        )


class AuditAPIHandler(_AuditAnswer):
    async def get(self, slug: str):
        community = self.community(slug, READ_SCOPE)
        await self.answer(community.slug, community.slug)


class HubAuditAPIHandler(_AuditAnswer):
    async def get(self):
        require_all(self, READ_SCOPE)
        await self.answer(None, "hub")


# -- the pages --------------------------------------------------------------------


def _form_values(handler: BaseHandler, kind: str) -> dict[str, Any]:
    """An environment's form fields, as typed."""

    def text(name: str) -> str:
        return handler.get_body_argument(name, "").strip()

    field = "image" if kind == "kube" else "software_environment"
    return {
        "slug": text("slug"),
        "display_name": text("display_name"),
        "description": text("description"),
        field: text(field),
        "sizes": handler.get_body_arguments("sizes"),
        "default_size": text("default_size"),
        "default": handler.get_body_argument("default", "") == "on",
    }


def entry_of(values: dict[str, Any], kind: str) -> dict[str, Any]:
    """An environment from its form's fields (empty optional fields left out)."""
    field = "image" if kind == "kube" else "software_environment"
    entry: dict[str, Any] = {"slug": values["slug"], field: values[field]}
    for key in ("display_name", "description", "default_size"):
        if values[key]:
            entry[key] = values[key]
    if values["sizes"]:
        entry["sizes"] = list(values["sizes"])
    if values["default"]:
        entry["default"] = True
    return entry


def values_of(entry: dict[str, Any]) -> dict[str, Any]:
    """A stored environment's form fields."""
    return {
        "slug": entry.get("slug", ""),
        "display_name": entry.get("display_name", ""),
        "description": entry.get("description", ""),
        "image": entry.get("image", ""),
        "software_environment": entry.get("software_environment", ""),
        "sizes": list(entry.get("sizes") or []),
        "default_size": entry.get("default_size", ""),
        "default": bool(entry.get("default")),
    }


class CommunitiesPage(ConsoleMixin, BaseHandler):
    """``hubext/communities/``: the communities the person may read."""

    @web.authenticated
    async def get(self):
        require_some(self, READ_SCOPE)
        slugs = readable(self, self.console.communities)
        html = await self.render_template(
            "hubext-console-communities.html",
            communities=[self.summary(self.console.communities[s]) for s in slugs],
            hub_audit=(
                url_path_join(self.hub.base_url, "api/hubext/audit")
                if holds_all(self, READ_SCOPE)
                else None
            ),
        )
        self.finish(html)


class AddSlash(BaseHandler):
    """``hubext/communities/<slug>``: to the page, with its ``/``."""

    def get(self, slug: str = ""):
        where = url_path_join(self.hub.base_url, "hubext/communities", slug)
        self.redirect(where + "/", permanent=True)


class CommunityPage(ConsoleMixin, BaseHandler):
    """``hubext/communities/<slug>/``: a community's console."""

    @web.authenticated
    async def get(self, slug: str):
        community = self.community(slug, READ_SCOPE)
        await self.show_page(community, form=None)

    async def show_page(
        self, community: Community, form: dict | None, status: int = 200
    ) -> None:
        model = await self.community_model(community)
        rows, audit_count = await self.run(
            self.store.page_audit, community.slug, PAGE_AUDIT_ROWS
        )
        kind = self.console.kind
        environments = model["settings"].get("environments") or []
        editing = self.get_query_argument("edit", None)
        if form and form["action"] == EDIT:
            editing = form["environment"]
        attention = {
            item["field"]: item["message"] for item in model["needs_attention"]
        }
        html = await self.render_template(
            "hubext-console-community.html",
            community=model,
            kind=kind,
            field="image" if kind == "kube" else "software_environment",
            environments=[
                {
                    "entry": entry,
                    "values": values_of(entry) if isinstance(entry, dict) else {},
                    "attention": [
                        message
                        for path, message in attention.items()
                        if path.startswith(f"settings.environments[{i}]")
                    ],
                }
                for i, entry in enumerate(environments)
            ],
            editing=editing,
            form=form,
            blank=values_of({}),
            audit=[row.as_json() for row in rows],
            audit_count=audit_count,
            members=[{**m, "why_words": why_words(m)} for m in model["members"]],
            use=use_lines(self.console.limits(community.slug), model["used"]),
            saved=self.get_query_argument("saved", None),
            audit_csv=model["links"]["audit"] + "?" + urlencode({"format": "csv"}),
            duration=duration_words,
        )
        self.set_status(status)
        self.finish(html)

    @web.authenticated
    async def post(self, slug: str):
        community = self.community(slug, ADMIN_SCOPE)
        kind = self.console.kind or "local"
        action = self.get_body_argument("action", "")
        environment = self.get_body_argument("environment", "")
        form: dict[str, Any] = {
            "action": action,
            "environment": environment,
            "values": {},
            "fields": {},
            "messages": [],
        }
        try:
            make_edit = self._edit(action, environment, kind, form)
            raw = self.get_body_argument("version", "")
            version = _version(int(raw) if raw.isdigit() else raw)
            row, edit = await self.change(community, version, make_edit)
        except ConsoleError as e:
            self.log_refusal(slug, action or "change", e)
            if e.status_code not in (400, 404, 409):
                raise
            form["messages"] = [e.message] if not e.errors else []
            for error in e.errors:
                form["fields"].setdefault(field_of(error["field"]), []).append(
                    error["message"]
                )
                form["messages"].append(f"{error['field']}: {error['message']}")
            await self.show_page(community, form, status=e.status_code)
            return
        self.redirect(
            self.page_url(community.slug)
            + "?"
            + urlencode({"saved": f"{edit.action} (version {row.version})"}),
            status=303,
        )

    def _edit(self, action: str, environment: str, kind: str, form: dict):
        """What the form asks for, as an edit of the stored document."""
        if action in (ADD, EDIT):
            values = _form_values(self, kind)
            form["values"] = values
            entry = entry_of(values, kind)
            if action == ADD:
                return lambda document: add_environment(document, entry)
            return lambda document: edit_environment(document, environment, entry)
        if action == REMOVE:
            return lambda document: remove_environment(document, environment)
        if action == "environment.move":
            direction = self.get_body_argument("direction", "")
            if direction not in ("up", "down"):
                raise ConsoleError(400, f"direction: up or down, got {show(direction)}")

            def move(document):
                slugs = [
                    e.get("slug") if isinstance(e, dict) else None
                    for e in (document or {}).get("environments") or []
                ]
                if environment not in slugs:
                    raise EditError(
                        "environment", f"no environment {show(environment)}"
                    )
                i = slugs.index(environment)
                j = i - 1 if direction == "up" else i + 1
                if 0 <= j < len(slugs):
                    slugs[i], slugs[j] = slugs[j], slugs[i]
                return reorder_environments(document, slugs)

            return move
        if action == DEFAULT:
            return lambda document: set_default(document, environment or None)
        if action == IDLE_TIMEOUT:
            raw = self.get_body_argument("idle_timeout", "").strip()
            form["values"] = {"idle_timeout": raw}
            if raw == "":
                seconds = None
            elif raw.isdigit():
                seconds = int(raw)
            else:
                raise ConsoleError(
                    400,
                    f"settings.idle_timeout: {show(raw)} is not a number of seconds",
                    [
                        {
                            "field": "settings.idle_timeout",
                            "message": f"{show(raw)} is not a number of seconds",
                        }
                    ],
                )
            return lambda document: set_idle_timeout(document, seconds)
        raise ConsoleError(400, f"action: not a change this page makes: {show(action)}")


def console_handlers(console: HubConsole) -> list[tuple]:
    """The console's routes (under the hub's prefix), for the authenticator's
    ``get_handlers``."""
    kwargs = {"console": console}
    api = "/api/hubext/communities"
    return [
        (rf"{api}", CommunitiesAPIHandler, kwargs),
        (rf"{api}/({SLUG})", CommunityAPIHandler, kwargs),
        (rf"{api}/({SLUG})/members", MembersAPIHandler, kwargs),
        (rf"{api}/({SLUG})/settings", SettingsAPIHandler, kwargs),
        (rf"{api}/({SLUG})/environments", EnvironmentsAPIHandler, kwargs),
        (rf"{api}/({SLUG})/environments/({ENV})", EnvironmentAPIHandler, kwargs),
        (rf"{api}/({SLUG})/order", OrderAPIHandler, kwargs),
        (rf"{api}/({SLUG})/default", DefaultAPIHandler, kwargs),
        (rf"{api}/({SLUG})/idle-timeout", IdleTimeoutAPIHandler, kwargs),
        (rf"{api}/({SLUG})/audit", AuditAPIHandler, kwargs),
        (r"/api/hubext/audit", HubAuditAPIHandler, kwargs),
        (r"/hubext/communities/", CommunitiesPage, kwargs),
        (r"/hubext/communities", AddSlash),
        (rf"/hubext/communities/({SLUG})/", CommunityPage, kwargs),
        (rf"/hubext/communities/({SLUG})", AddSlash),
    ]
