"""A minimal OpenID Connect provider for the booking pages' sign-in test (Keycloak does not run
on the test machine): discovery, an authorization endpoint that signs the user in at once and
redirects back with a code, and a token endpoint that checks the PKCE verifier (S256) before it
issues an RS256 access token with the claims vdx reads. Nothing else of OIDC."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


class TinyIdp:
    def __init__(self, issuer: str, client_id: str, claims: dict[str, Any]) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.claims = claims
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, dict[str, str]] = {}
        self.tokens_issued = 0
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/auth", self.authorize),
                Route("/token", self.token, methods=["POST", "OPTIONS"]),
            ]
        )

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @staticmethod
    def _cors(response: Response) -> Response:
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        return response

    async def discovery(self, request: Request) -> Response:
        return self._cors(
            JSONResponse(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/auth",
                    "token_endpoint": f"{self.issuer}/token",
                    "code_challenge_methods_supported": ["S256"],
                }
            )
        )

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE required"}, 400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"]}
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

    async def token(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._cors(Response(status_code=204))
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = self.codes.pop(str(form.get("code")), None)
        verifier = str(form.get("code_verifier", ""))
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant is None or grant["challenge"] != digest or grant["redirect_uri"] != form.get("redirect_uri"):
            return self._cors(JSONResponse({"error": "invalid_grant"}, status_code=400))
        now = int(time.time())
        token = jwt.encode(
            {"iss": self.issuer, "iat": now, "exp": now + 300, **self.claims}, self.key, algorithm="RS256"
        )
        self.tokens_issued += 1
        return self._cors(JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 300}))
