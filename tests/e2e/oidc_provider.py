"""A minimal OpenID Connect provider, for tests only.

Enough of the authorization-code flow for Streamlit's ``st.login`` (Authlib) to complete a real
round trip over HTTP: the discovery document, ``/authorize`` (no login screen: it redirects
straight back with a code for ``provider.user``), ``/token`` (checks the client's credentials,
the code, the redirect URI and the PKCE verifier, and returns an RS256-signed id_token with
iss, aud, nonce, iat and exp) and ``/jwks`` (the public key). Every grant is recorded in
``issued`` so a test can tell the provider was really used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_ID = "phoenix-test-key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(n: int) -> str:
    return _b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@dataclass
class IdpUser:
    sub: str
    email: str
    groups: list[str]


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    user: IdpUser


@dataclass
class OidcProvider:
    """Serves on 127.0.0.1 in a thread; ``user`` is who the next ``/authorize`` signs in."""

    client_id: str
    client_secret: str
    user: IdpUser
    issued: list[dict[str, Any]] = field(default_factory=list)
    _key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    _codes: dict[str, _Grant] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

    @property
    def issuer(self) -> str:
        assert self._server is not None, "start() the provider first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> OidcProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet: pytest shows failures, not traffic
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                provider._get(self)

            def do_POST(self) -> None:  # noqa: N802
                provider._post(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- endpoints -------------------------------------------------------------------------

    def _discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "groups", "name"],
        }

    def _jwks(self) -> dict[str, Any]:
        pub = self._key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": KEY_ID,
                          "n": _int_b64(pub.n), "e": _int_b64(pub.e)}]}

    def _get(self, req: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(req.path)
        if url.path == "/.well-known/openid-configuration":
            _json(req, 200, self._discovery())
        elif url.path == "/jwks":
            _json(req, 200, self._jwks())
        elif url.path == "/authorize":
            self._authorize(req, dict(urllib.parse.parse_qsl(url.query)))
        else:
            _json(req, 404, {"error": "not_found"})

    def _authorize(self, req: BaseHTTPRequestHandler, q: dict[str, str]) -> None:
        if q.get("client_id") != self.client_id or q.get("response_type") != "code" or "redirect_uri" not in q:
            _json(req, 400, {"error": "invalid_request"})
            return
        if "openid" not in q.get("scope", "").split():
            _json(req, 400, {"error": "invalid_scope"})
            return
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Grant(self.client_id, q["redirect_uri"], q.get("nonce"), q.get("code_challenge"),
                                   self.user)
        back = {"code": code, **({"state": q["state"]} if "state" in q else {})}
        sep = "&" if "?" in q["redirect_uri"] else "?"
        req.send_response(302)
        req.send_header("Location", q["redirect_uri"] + sep + urllib.parse.urlencode(back))
        req.end_headers()

    def _client_ok(self, req: BaseHTTPRequestHandler, form: dict[str, str]) -> bool:
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            cid, secret = urllib.parse.unquote(cid), urllib.parse.unquote(secret)
        else:
            cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        return cid == self.client_id and secrets.compare_digest(secret, self.client_secret)

    def _post(self, req: BaseHTTPRequestHandler) -> None:
        if urllib.parse.urlsplit(req.path).path != "/token":
            _json(req, 404, {"error": "not_found"})
            return
        body = req.rfile.read(int(req.headers.get("Content-Length", "0"))).decode()
        form = dict(urllib.parse.parse_qsl(body))
        if not self._client_ok(req, form):
            _json(req, 401, {"error": "invalid_client"})
            return
        grant = self._codes.pop(form.get("code", ""), None)  # a code is good once
        if form.get("grant_type") != "authorization_code" or grant is None \
                or form.get("redirect_uri") != grant.redirect_uri:
            _json(req, 400, {"error": "invalid_grant"})
            return
        if grant.challenge is not None:
            verifier = form.get("code_verifier", "")
            if _b64(hashlib.sha256(verifier.encode()).digest()) != grant.challenge:
                _json(req, 400, {"error": "invalid_grant", "error_description": "PKCE verifier"})
                return
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "aud": self.client_id, "sub": grant.user.sub,
                                  "iat": now, "exp": now + 300, "email": grant.user.email,
                                  "email_verified": True, "groups": grant.user.groups,
                                  "name": grant.user.email.split("@")[0]}
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        self.issued.append(claims)
        _json(req, 200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300,
                         "scope": "openid email profile", "id_token": self._sign(claims)})

    def _sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}
        head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
        sig = self._key.sign(head.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return head + "." + _b64(sig)


def _json(req: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    req.send_response(status)
    req.send_header("Content-Type", "application/json")
    req.send_header("Cache-Control", "no-store")
    req.send_header("Content-Length", str(len(data)))
    req.end_headers()
    req.wfile.write(data)
