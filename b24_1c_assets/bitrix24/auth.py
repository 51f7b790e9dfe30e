"""How the client authenticates: an inbound webhook, or a local application's OAuth 2.0 tokens.

Webhook (`local-integrations/local-webhooks.md`): `https://<portal>/rest/<user>/<code>/<method>`; the URL is the
credential. It cannot call `event.bind` / `event.offline.*` (application context only).

Application (`settings/oauth/index.md`, `settings/oauth/auto-renewal.md`): `https://<portal>/rest/<method>` with
`auth=<access_token>`. The access token lives an hour; on `expired_token` the client asks the authorization
server (`oauth.bitrix.info`) for a new pair with the stored refresh token and must keep the new refresh token
instead of the old one. The pair lives in a file only the product reads (mode 0600, `data/secrets/` by default),
never in logs, errors or DuckDB. Several processes (sensor ticks, runs) share that file: renewal happens under
an exclusive lock, and a process that finds a newer pair there than the one that failed takes it instead of
spending the refresh token a second time.

Both refuse `http://` unless the host is loopback: a portal requires HTTPS and the URL or body carries a secret.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from .errors import AuthError

DEFAULT_OAUTH_SERVER = "https://oauth.bitrix.info"
DEFAULT_TOKEN_FILE = "data/secrets/bitrix24-oauth.json"


class _Secret:
    """Holds a secret; prints as *** so it cannot leak through repr/vars/metadata."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_https(url: str, what: str) -> None:
    """A credential travels with every call: plain HTTP only to this machine (the sandbox)."""
    parts = urlsplit(url)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(
            f"{what} must use https:// (a portal requires HTTPS and the call carries a credential); "
            f"http:// is accepted only for a loopback sandbox, not for {parts.hostname}"
        )


class WebhookAuth:
    """An inbound webhook `https://<portal>/rest/<user>/<code>/`."""

    kind = "webhook"

    def __init__(self, webhook_url: str) -> None:
        parts = urlsplit(webhook_url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname or "/rest/" not in (parts.path or ""):
            raise ValueError("webhook_url must look like https://<portal>/rest/<user>/<code>/")
        require_https(webhook_url, "the webhook URL")
        self._url = _Secret(webhook_url if webhook_url.endswith("/") else webhook_url + "/")
        self.host = parts.hostname + (f":{parts.port}" if parts.port else "")
        match = re.search(r"/rest/(\d+)/[^/]+/?$", parts.path)
        self.user_id = int(match.group(1)) if match else None

    def __repr__(self) -> str:
        return f"WebhookAuth(host={self.host!r}, user={self.user_id})"

    @property
    def pacer_key(self) -> str:
        return self._url.reveal()

    def url(self, method: str) -> str:
        return self._url.reveal() + method

    def token(self) -> str | None:
        return None

    def renew(self, failed_token: str | None) -> bool:
        return False


class TokenStore:
    """The application's token pair in a JSON file readable by its owner only (0600 in a 0700 folder)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"TokenStore({self.path.name!r})"

    def load(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AuthError(
                f"no Bitrix24 application tokens in {self.path.name}: store the refresh token from the "
                "installation with `python -m b24_1c_assets.bitrix24.auth store`"
            ) from None
        except ValueError:
            raise AuthError(f"the Bitrix24 token file {self.path.name} is not valid JSON") from None

    def save(self, tokens: dict) -> None:
        """Write atomically with mode 0600 (the folder 0700): only the product's user reads it."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        keep = {
            k: tokens.get(k)
            for k in ("access_token", "refresh_token", "expires", "user_id", "member_id", "client_endpoint", "scope")
            if tokens.get(k) is not None
        }
        tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(keep, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    @contextmanager
    def locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class ApplicationAuth:
    """A local application: `portal_url` (`https://<portal>/`), client id / secret, tokens in a `TokenStore`."""

    kind = "application"

    def __init__(
        self,
        portal_url: str,
        client_id: str,
        client_secret: str,
        token_store: TokenStore | str,
        *,
        oauth_server: str = DEFAULT_OAUTH_SERVER,
        timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(portal_url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("portal_url must look like https://<portal>/")
        if not client_id or not client_secret:
            raise ValueError("an application needs its client id and client secret")
        require_https(portal_url, "the portal URL")
        require_https(oauth_server, "the OAuth server URL")
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.client_id = client_id
        self._secret = _Secret(client_secret)
        self.store = token_store if isinstance(token_store, TokenStore) else TokenStore(token_store)
        self.oauth_server = oauth_server.rstrip("/")
        self.timeout = timeout
        self._lock = threading.Lock()
        self._access: _Secret | None = None
        self.renewals = 0

    def __repr__(self) -> str:
        return f"ApplicationAuth(host={self.host!r}, client_id={self.client_id!r})"

    @property
    def pacer_key(self) -> str:
        return f"{self.base}#{self.client_id}"

    @property
    def user_id(self) -> int | None:
        """The user the application acts as (the token server's `user_id`): whose changes are ours."""
        value = self.store.load().get("user_id")
        return int(value) if value not in (None, "") else None

    def url(self, method: str) -> str:
        return f"{self.base}/rest/{method}"

    def token(self) -> str:
        with self._lock:
            if self._access is None:
                stored = self.store.load()
                if stored.get("access_token") and float(stored.get("expires") or 0) > time.time() + 5:
                    self._access = _Secret(str(stored["access_token"]))
        if self._access is None:  # only a refresh token stored (fresh installation) or an old pair
            self.renew(None)
        return self._access.reveal()  # type: ignore[union-attr]

    def renew(self, failed_token: str | None) -> bool:
        """New tokens after `expired_token`: from the file if another process renewed already, else from the
        authorization server (the refresh token is spent and replaced). Raises AuthError when refused."""
        with self._lock, self.store.locked():
            stored = self.store.load()
            current = str(stored.get("access_token") or "")
            if current and current != failed_token and float(stored.get("expires") or 0) > time.time() + 5:
                self._access = _Secret(current)  # someone renewed while we waited for the lock
                return True
            refresh = str(stored.get("refresh_token") or "")
            if not refresh:
                raise AuthError("the Bitrix24 token file holds no refresh token", host=self.host)
            failure = None
            try:
                answer = requests.get(
                    f"{self.oauth_server}/oauth/token/",
                    timeout=(10.0, self.timeout),
                    params={
                        "grant_type": "refresh_token",
                        "client_id": self.client_id,
                        "client_secret": self._secret.reveal(),
                        "refresh_token": refresh,
                    },
                )
                body: Any = answer.json() if answer.content else {}
            except (requests.RequestException, ValueError) as exc:
                failure = f"token renewal failed ({type(exc).__name__})"  # the message would carry the URL
            if failure is not None:
                raise AuthError(failure, host=self.host, method="oauth/token")
            if not isinstance(body, dict) or not body.get("access_token") or not body.get("refresh_token"):
                code = body.get("error") if isinstance(body, dict) else None
                raise AuthError(
                    "the authorization server refused to renew the tokens; if the refresh token is "
                    "spent or older than 180 days, reinstall the application and store the new one",
                    host=self.host,
                    method="oauth/token",
                    status=answer.status_code,
                    code=code,
                )
            if not body.get("expires"):
                body["expires"] = int(time.time() + float(body.get("expires_in") or 3600))
            self.store.save(body)
            self._access = _Secret(str(body["access_token"]))
            self.renewals += 1
            return True


def store_tokens(
    path: str, refresh_token: str, *, user_id: int | None = None, access_token: str = "", expires: int = 0
) -> None:
    """Put the installation's tokens into the token file (mode 0600)."""
    TokenStore(path).save(
        {
            "refresh_token": refresh_token,
            "access_token": access_token or None,
            "expires": expires or None,
            "user_id": user_id,
        }
    )


def _main(argv: list[str] | None = None) -> int:
    """`python -m b24_1c_assets.bitrix24.auth store [--file F] [--user-id N]`: reads the refresh token from
    standard input (never from the command line, where `ps` and shell history would show it)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m b24_1c_assets.bitrix24.auth")
    sub = parser.add_subparsers(dest="command", required=True)
    store = sub.add_parser("store", help="store the application's refresh token (read from stdin)")
    store.add_argument("--file", default=os.environ.get("B24_OAUTH_TOKEN_FILE") or DEFAULT_TOKEN_FILE)
    store.add_argument("--user-id", type=int, default=None, help="the installing user (whose changes are ours)")
    args = parser.parse_args(argv)
    token = sys.stdin.readline().strip()
    if not token:
        print("no refresh token on standard input", file=sys.stderr)
        return 2
    store_tokens(args.file, token, user_id=args.user_id)
    print(f"stored in {args.file} (mode 0600)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
