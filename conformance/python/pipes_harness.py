"""Starts a real `pipes serve` for the conformance suite: temp SQLite database, a vault key,
an environment and an API key made with the CLI, exactly as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pipes_bin() -> str:
    return os.environ.get("PIPES_BIN", str(ROOT / "target" / "debug" / "pipes"))


@dataclass
class PipesServer:
    base_url: str
    api_key: str
    client_id: str
    log_path: Path
    env: dict
    process: subprocess.Popen

    def cli(self, *args: str) -> str:
        out = subprocess.run([pipes_bin(), *args], env=self.env, check=True, capture_output=True, text=True)
        return out.stdout

    def logs(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start(tmp: Path | None = None, settings: dict | None = None) -> PipesServer:
    """`settings`: extra PIPES_* variables (short webhook retries, …)."""
    tmp = Path(tmp or tempfile.mkdtemp(prefix="pipes-conformance-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPES_")}
    env["PIPES_DATABASE_URL"] = f"sqlite://{tmp / 'pipes.db'}"
    env["PIPES_LISTEN"] = "127.0.0.1:0"
    env["PIPES_LOG_FORMAT"] = "json"
    env["PIPES_LOG"] = "debug"
    # The suites count the refreshes callers cause; the background refresh worker (tested in the
    # Rust suites and the fault test) would add its own.
    env["PIPES_REFRESH_AHEAD_SECONDS"] = "0"
    # The mock providers and webhook receivers listen on loopback, which Pipes refuses to call
    # unless allowed.
    env["PIPES_EGRESS_ALLOW_CIDRS"] = "127.0.0.0/8,::1/128"
    env.update(settings or {})

    def cli(*args: str) -> str:
        return subprocess.run([pipes_bin(), *args], env=env, check=True, capture_output=True, text=True).stdout

    env["PIPES_VAULT_KEYS"] = cli("vault", "generate-key", "--kid", "conformance").strip()
    created = cli("env", "create", "sandbox")
    client_id = next(line.split()[-1] for line in created.splitlines() if line.startswith("client id"))
    api_key = cli("keys", "create", "--env", "sandbox").strip().splitlines()[-1]

    log_path = tmp / "server.log"
    process = subprocess.Popen([pipes_bin(), "serve"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    ready = threading.Event()
    address: list[str] = []

    def pump() -> None:
        with log_path.open("w") as log:
            for line in process.stderr:  # type: ignore[union-attr]
                log.write(line)
                log.flush()
                if not ready.is_set():
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if record.get("message") == "pipes is serving":
                        address.append(record["listen"])
                        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.time() + 30
    while not ready.wait(0.1):
        if process.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"pipes serve did not start:\n{log_path.read_text() if log_path.exists() else ''}")
    base_url = f"http://{address[0]}"
    return PipesServer(base_url=base_url, api_key=api_key, client_id=client_id, log_path=log_path, env=env, process=process)


@dataclass
class Provider:
    authorization_url: str
    token_url: str
    control_url: str
    process: subprocess.Popen

    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"{self.control_url}/stats") as r:
            return json.loads(r.read())

    def set_ttl(self, seconds: int) -> None:
        import urllib.request

        urllib.request.urlopen(f"{self.control_url}/ttl?seconds={seconds}").read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_provider(kind: str = "oauth2-mock-server", *args: str) -> Provider:
    """A real third-party OAuth server, from conformance/node/providers.js."""
    script = ROOT / "conformance" / "node" / "providers.js"
    process = subprocess.Popen(["node", str(script), kind, *args], stdout=subprocess.PIPE, text=True)
    info = json.loads(process.stdout.readline())  # type: ignore[union-attr]
    return Provider(info["authorization_url"], info["token_url"], info["control_url"], process)


class _NoRedirect(__import__("urllib.request").request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: D102
        return None


def browse(url: str) -> str:
    """Follows the browser part of a connection by hand: the hosted page (confirming when it
    asks), the provider (signing in and consenting on its own pages when it has them, with a
    cookie jar), and the callback. Returns where the callback redirects, or the callback URL
    when it ends on its own page (no return_to)."""
    import http.cookiejar
    import re
    import urllib.error
    import urllib.parse
    import urllib.request

    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def fetch(u: str, data: bytes | None = None) -> tuple[int, str, str]:
        try:
            r = opener.open(urllib.request.Request(u, data=data))
            return r.status, r.headers.get("location", ""), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("location", ""), e.read().decode()

    status, location, body = fetch(url)
    if status == 200:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)  # type: ignore[union-attr]
        status, location, body = fetch(url, urllib.parse.urlencode({"csrf_token": csrf, "action": "continue"}).encode())
    assert status == 302, (status, body)
    current, form = location, None
    for _ in range(12):
        status, location, body = fetch(current, form)
        form = None
        if 300 <= status < 400:
            target = urllib.parse.urljoin(current, location)
            if urllib.parse.urlparse(target).path.endswith("/callback"):
                status, location, body = fetch(target)
                if status == 200 and " is connected" in body:
                    return target
                assert status == 302, (status, body)
                return location
            current = target
        elif status == 200:
            # The provider's own sign-in or consent page.
            action = re.search(r'<form[^>]*action="([^"]+)"', body).group(1)  # type: ignore[union-attr]
            prompt = re.search(r'name="prompt" value="(\w+)"', body).group(1)  # type: ignore[union-attr]
            fields = {"prompt": prompt, "login": "conformance-user", "password": "any"} if prompt == "login" else {"prompt": prompt}
            form = urllib.parse.urlencode(fields).encode()
            current = urllib.parse.urljoin(current, action)
        else:
            raise AssertionError((status, body))
    raise AssertionError("too many steps at the provider")


class Receiver:
    """A webhook receiver on a loopback port: records raw bodies and signature headers, and can
    answer 500 to the next requests."""

    def __init__(self) -> None:
        import http.server

        self.received: list[dict] = []
        self.fail_next = 0
        self._lock = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                with outer._lock:
                    fail = outer.fail_next > 0
                    if fail:
                        outer.fail_next -= 1
                    outer.received.append(
                        {"raw": raw, "signature": self.headers.get("WorkOS-Signature"), "accepted": not fail}
                    )
                    outer._lock.notify_all()
                self.send_response(500 if fail else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # quiet
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def accepted(self, n: int, timeout: float = 15) -> list[dict]:
        deadline = time.time() + timeout
        with self._lock:
            while True:
                ok = [r for r in self.received if r["accepted"]]
                if len(ok) >= n:
                    return ok
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"only {len(ok)} of {n} deliveries accepted")
                self._lock.wait(left)

    def close(self) -> None:
        self._server.shutdown()
