"""RS256 JWTs: verification (JWKS URL, PEM key, or the dev key) and minting with the dev key.

The dev key lives in ``VDX_DATA_DIR`` so that ``vdx token`` and ``vdx serve`` on one machine agree
without any identity provider; a real deployment points ``VDX_JWT_JWKS_URL`` at Keycloak.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from vdx.settings import Settings


def load_or_create_dev_key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        os.link(tmp, path)  # first writer wins when several processes start at once
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return load_or_create_dev_key(path)


def mint_token(
    settings: Settings,
    *,
    org: str | None,
    email: str | None,
    roles: list[str],
    ttl: int = 3600,
    parent_org: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A token signed with the dev key, with the configured claim names."""
    key = load_or_create_dev_key(settings.signing_key_file)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.dev_issuer,
        "iat": now,
        "exp": now + ttl,
        "jti": str(uuid.uuid4()),
        settings.claim_roles: roles,
    }
    if org is not None:
        claims[settings.claim_organisation] = org
    if email is not None:
        claims[settings.claim_email] = email
    if parent_org is not None:
        claims[settings.claim_parent_org] = parent_org
    claims.update(extra or {})
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "vdx-dev"})


class TokenError(Exception):
    pass


# Verified tokens kept (LRU), and for how long at most: a key withdrawn from the JWKS stops
# tokens it signed within this time, as the JWKS client's own key cache does.
VERIFIED_CACHE_SIZE = 4096
VERIFIED_CACHE_SECONDS = 300.0
LEEWAY = 5


class TokenVerifier:
    """Checks signature, issuer and expiry (spec 1.0 Auth); any defect is a ``TokenError``.

    A token that passed is remembered by its exact text until it expires (at most
    ``VERIFIED_CACHE_SECONDS``): an integration sends the same token with every request, and the
    signature check is a large part of a trivial request's CPU. Only expiry can change a verified
    token's verdict, and that is checked on every hit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)
        elif settings.jwt_public_key_file:
            self._key = serialization.load_pem_public_key(settings.jwt_public_key_file.read_bytes())
        else:
            self._key = load_or_create_dev_key(settings.signing_key_file).public_key()
        self.issuer = settings.jwt_issuer or (None if self._jwks else settings.dev_issuer)
        self._verified: OrderedDict[str, tuple[dict[str, Any], float]] = OrderedDict()

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims (the caller must not change them: they may be shared)."""
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None:
            if now < hit[1]:
                self._verified.move_to_end(token)
                return hit[0]
            del self._verified[token]
        claims = await self._check(token)
        # PyJWT accepts a token until exp + leeway ("require" makes exp present and numeric)
        self._verified[token] = (claims, min(float(claims["exp"]) + LEEWAY, now + VERIFIED_CACHE_SECONDS))
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    async def _check(self, token: str) -> dict[str, Any]:
        try:
            if self._jwks is not None:
                signing = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                key = signing.key
            else:
                key = self._key
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"require": ["exp"], "verify_aud": False},
                leeway=LEEWAY,
            )
            return claims
        except (jwt.PyJWTError, ValueError) as exc:
            raise TokenError(str(exc)) from exc
