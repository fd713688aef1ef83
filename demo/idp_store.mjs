// State of the demo identity provider kept in a directory, so that a restart
// of `make demo` finds its sessions, grants and tokens again (the hub's stored
// refresh tokens keep working) and its signing key (earlier ID tokens still
// verify, e.g. as id_token_hint when signing out).
//
// - keys.json (mode 0600): the ID token signing key and the cookie keys,
//   made at the first start;
// - store.json (mode 0600): oidc-provider's stored models (Session, Grant,
//   AccessToken, RefreshToken, ...), written on each change. A demo's
//   handful of people needs nothing faster.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

function writePrivate(path, data) {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(data), { mode: 0o600 });
  renameSync(tmp, path);
}

/** `{ jwks, cookieKeys }`, made once and kept in `dir`. */
export function loadKeys(dir) {
  mkdirSync(dirname(dir), { recursive: true }); // parents: the usual mode
  if (!existsSync(dir)) mkdirSync(dir, { mode: 0o700 });
  const path = join(dir, "keys.json");
  if (!existsSync(path)) {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = { ...privateKey.export({ format: "jwk" }), use: "sig", alg: "RS256" };
    jwk.kid = randomBytes(8).toString("hex");
    writePrivate(path, { jwks: { keys: [jwk] }, cookieKeys: [randomBytes(32).toString("hex")] });
  }
  return JSON.parse(readFileSync(path, "utf8"));
}

/** An oidc-provider adapter class whose models live in `dir`/store.json. */
export function fileAdapter(dir) {
  const path = join(dir, "store.json");
  const records = new Map(existsSync(path) ? Object.entries(JSON.parse(readFileSync(path, "utf8"))) : []);
  const now = () => Math.floor(Date.now() / 1000);
  const live = (record) => record && (!record.expiresAt || record.expiresAt > now());

  function save() {
    for (const [key, record] of records) if (!live(record)) records.delete(key);
    writePrivate(path, Object.fromEntries(records));
  }

  return class FileAdapter {
    constructor(name) {
      this.name = name;
    }

    key(id) {
      return `${this.name}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      records.set(this.key(id), { payload, expiresAt: expiresIn ? now() + expiresIn : undefined });
      save();
    }

    async find(id) {
      const record = records.get(this.key(id));
      return live(record) ? record.payload : undefined;
    }

    async findByUid(uid) {
      for (const [key, record] of records) {
        if (key.startsWith(`${this.name}:`) && live(record) && record.payload.uid === uid) {
          return record.payload;
        }
      }
      return undefined;
    }

    async findByUserCode(userCode) {
      for (const [key, record] of records) {
        if (key.startsWith(`${this.name}:`) && live(record) && record.payload.userCode === userCode) {
          return record.payload;
        }
      }
      return undefined;
    }

    async consume(id) {
      const record = records.get(this.key(id));
      if (record) {
        record.payload.consumed = now();
        save();
      }
    }

    async destroy(id) {
      records.delete(this.key(id));
      save();
    }

    async revokeByGrantId(grantId) {
      for (const [key, record] of records) {
        if (record.payload.grantId === grantId) records.delete(key);
      }
      save();
    }
  };
}
