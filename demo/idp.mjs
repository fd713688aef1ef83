// A local OpenID Connect provider for the hubext demo and test suite.
//
// It is the real `oidc-provider` (npm) with a tiny sign-in page: pick a sample
// account (or POST `login=<account>`), no password. Consent is implied for the
// configured client (a first-party client), so a login needs one form post.
//
// Usage:
//   node demo/idp.mjs --port 8090 --accounts demo/accounts.json \
//     --client-id hubext-demo --client-secret SECRET \
//     --redirect-uri http://127.0.0.1:8000/hub/oauth_callback [--redirect-uri ...] \
//     [--post-logout-redirect-uri http://127.0.0.1:8000/hub/login ...] \
//     [--state-dir .hubext-demo/idp]
//
// With --state-dir, sessions, grants, tokens and keys survive a restart
// (demo/idp_store.mjs); without it they live in memory.
//
// Signing out (OpenID Connect RP-initiated logout 1.0): the discovery
// document's end_session_endpoint is /session/end. A client sends the person to
//   GET /session/end?id_token_hint=<id token>&post_logout_redirect_uri=<uri>&state=<s>
// (or client_id=<id> instead of id_token_hint); <uri> must be one of the
// --post-logout-redirect-uri values, exactly. The provider ends the person's
// whole session without asking (the confirmation form submits itself), then
// redirects to <uri>?state=<s>. The next sign-in shows the account list again.
//
// Control endpoints for tests (only on the loopback address it listens on):
//   POST /_control/fail?endpoint=userinfo&status=503   make /me answer 503
//   POST /_control/fail?endpoint=token&status=0         clear the failure
//   PUT  /_control/accounts/<id>  (JSON claims)         change an account's claims
//   GET  /_control/stats                                requests per endpoint
import http from "node:http";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import Provider from "oidc-provider";
import { fileAdapter, loadKeys } from "./idp_store.mjs";

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8090" },
    issuer: { type: "string" },
    accounts: { type: "string", default: new URL("./accounts.json", import.meta.url).pathname },
    "client-id": { type: "string", default: "hubext-demo" },
    "client-secret": { type: "string", default: process.env.HUBEXT_IDP_CLIENT_SECRET },
    "redirect-uri": { type: "string", multiple: true, default: [] },
    "post-logout-redirect-uri": { type: "string", multiple: true, default: [] },
    "state-dir": { type: "string" },
  },
});

if (!args["client-secret"]) {
  console.error("idp: --client-secret (or HUBEXT_IDP_CLIENT_SECRET) is required");
  process.exit(2);
}
if (args["redirect-uri"].length === 0) {
  console.error("idp: at least one --redirect-uri is required");
  process.exit(2);
}

const issuer = args.issuer || `http://${args.host}:${args.port}`;
const accounts = JSON.parse(readFileSync(args.accounts, "utf8"));
const clientId = args["client-id"];
const failures = new Map(); // endpoint name -> HTTP status
const stats = { token: 0, userinfo: 0 };

const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// Signing out of the hub signs out of this provider too, with no question
// asked: the confirmation form (its xsrf field, from oidc-provider) is
// submitted at once with logout=yes, which ends the whole session.
async function logoutSource(ctx, form) {
  ctx.type = "html";
  ctx.body = `<!doctype html><html><head><meta charset="utf-8"><title>Signing out</title></head>
<body><p>Signing out of the hubext demo identity provider...</p>
${form.replace("</form>", '<input type="hidden" name="logout" value="yes"/><noscript><button type="submit">Sign out</button></noscript></form>')}
<script>document.getElementById("op.logoutForm").submit();</script>
</body></html>`;
}

async function postLogoutSuccessSource(ctx) {
  ctx.type = "html";
  ctx.body = `<!doctype html><html><head><meta charset="utf-8"><title>Signed out</title></head>
<body><h1>Signed out</h1><p>You are signed out of the hubext demo identity provider.</p></body></html>`;
}

const stateDir = args["state-dir"];
const kept = stateDir
  ? { ...loadKeys(stateDir), adapter: fileAdapter(stateDir) }
  : { cookieKeys: [randomBytes(32).toString("hex")] };

const provider = new Provider(issuer, {
  ...(kept.adapter ? { adapter: kept.adapter, jwks: kept.jwks } : {}),
  clients: [
    {
      client_id: clientId,
      client_secret: args["client-secret"],
      redirect_uris: args["redirect-uri"],
      post_logout_redirect_uris: args["post-logout-redirect-uri"],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...account };
      },
    };
  },
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username"],
    groups: ["groups"],
    idp: ["idp"],
  },
  scopes: ["openid", "offline_access", "email", "profile", "groups", "idp"],
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // First-party client: consent is implied, so no consent screen.
  async loadExistingGrant(ctx) {
    const grantId =
      ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const grant = await ctx.oidc.provider.Grant.find(grantId);
      if (grant) return grant;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid offline_access email profile groups idp");
    grant.addOIDCClaims(["email", "email_verified", "name", "preferred_username", "groups", "idp"]);
    await grant.save();
    return grant;
  },
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed("refresh_token");
  },
  ttl: { AccessToken: 3600, RefreshToken: 86400, Session: 86400, Interaction: 600, Grant: 86400 },
  cookies: { keys: kept.cookieKeys },
  // Tokens stay opaque and userinfo carries the claims, as most providers do.
  conformIdTokenClaims: true,
});
provider.proxy = true;

function readText(req) {
  return new Promise((resolve, reject) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
      if (body.length > 10_000_000) reject(new Error("body too large"));
    });
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}

async function readBody(req) {
  return new URLSearchParams(await readText(req));
}

function describeGroups(groups) {
  const text = Array.isArray(groups) ? groups.join(", ") : JSON.stringify(groups ?? []);
  return (text.length > 120 ? `${text.slice(0, 120)}...` : text) || "none";
}

function loginPage(uid, error) {
  const rows = Object.entries(accounts)
    .map(
      ([id, a]) => `<li><button name="login" value="${escapeHtml(id)}">${escapeHtml(a.name || id)}</button>
        <small>${escapeHtml(a.email || "")}${a.email_verified === false ? " (unverified)" : ""}
        &middot; groups: ${escapeHtml(describeGroups(a.groups))}</small></li>`,
    )
    .join("\n");
  return `<!doctype html><html><head><meta charset="utf-8"><title>hubext demo identity provider</title>
<style>body{font-family:sans-serif;max-width:40em;margin:3em auto}li{margin:.6em 0;list-style:none}button{min-width:10em}</style>
</head><body><h1>hubext demo identity provider</h1>
<p>Sign in as one of the sample accounts (no password: this provider is for trying hubext only).</p>
${error ? `<p role="alert">${escapeHtml(error)}</p>` : ""}
<form method="post" action="/interaction/${escapeHtml(uid)}/login"><ul>${rows}</ul></form>
</body></html>`;
}

const providerCallback = provider.callback();
const endpointOf = (url) =>
  url.startsWith("/token") ? "token" : url.startsWith("/me") ? "userinfo" : null;

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname === "/_control/fail" && req.method === "POST") {
      const status = Number(url.searchParams.get("status") || 0);
      const endpoint = url.searchParams.get("endpoint");
      if (status) failures.set(endpoint, status);
      else failures.delete(endpoint);
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === "/_control/stats" && req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(stats));
      return;
    }
    const accountMatch = url.pathname.match(/^\/_control\/accounts\/([-\w.]+)$/);
    if (accountMatch && req.method === "PUT") {
      accounts[accountMatch[1]] = JSON.parse(await readText(req));
      res.writeHead(204).end();
      return;
    }
    const endpoint = endpointOf(url.pathname);
    if (endpoint) stats[endpoint] += 1;
    const failing = failures.get(endpoint);
    if (failing) {
      res.writeHead(failing, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "temporarily_unavailable" }));
      return;
    }
    const match = url.pathname.match(/^\/interaction\/([-\w]+)(\/login)?$/);
    if (!match) return providerCallback(req, res);

    const details = await provider.interactionDetails(req, res);
    if (match[2] && req.method === "POST") {
      const login = (await readBody(req)).get("login");
      if (!login || !Object.hasOwn(accounts, login)) {
        res.writeHead(400, { "content-type": "text/html; charset=utf-8" });
        res.end(loginPage(details.uid, "Unknown account."));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: login } }, {
        mergeWithLastSubmission: false,
      });
      return;
    }
    if (details.prompt.name === "login") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(loginPage(details.uid));
      return;
    }
    // Consent is implied (see loadExistingGrant); finish any other prompt.
    await provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
  } catch (err) {
    console.error("idp: error handling %s: %s", req.url.split("?")[0], err.message);
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    res.end("identity provider error\n");
  }
});

server.listen(Number(args.port), args.host, () => {
  console.log(`idp: OpenID Connect provider listening on ${issuer}`);
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections(); // idle keep-alive connections would hold it open
  });
}
