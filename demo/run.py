"""Run the hubext demo hub on http://127.0.0.1:8000 (``make demo``).

Starts the local OpenID Connect provider (demo/idp.mjs) on port 8090 and a
JupyterHub configured by jupyterhub_config.d/*.py. Stop with Ctrl-C.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.services import REPO, DemoEnvironment, stop_process, wait_for_http


def main() -> int:
    data_dir = REPO / ".hubext-demo"
    data_dir.mkdir(exist_ok=True)
    # Keep the key that encrypts auth_state across demo runs.
    key_file = data_dir / "crypt_key"
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_text(os.urandom(32).hex())
    demo = DemoEnvironment(data_dir=data_dir, crypt_key=key_file.read_text().strip())
    accounts = json.loads((REPO / "demo" / "accounts.json").read_text())
    idp = demo.start_idp()
    try:
        hub = demo.start_hub(wait=False)
        try:
            wait_for_http(f"{demo.hub_url}/hub/login", 90, hub)
            print(f"\nhubext demo: open {demo.hub_url}/ and sign in. Sample accounts:")
            for name, account in accounts.items():
                print(f"  {name:8} {account.get('name', '')}")
            print("Stop with Ctrl-C.\n", flush=True)
            return hub.wait()
        finally:
            stop_process(hub, timeout=30)
    except KeyboardInterrupt:
        return 0
    finally:
        stop_process(idp)


if __name__ == "__main__":
    sys.exit(main())
