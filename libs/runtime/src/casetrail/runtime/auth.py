"""Bearer tokens (JWT): who is calling, and whether the permission table lets them.

The key is configured per deployment: a JWKS URL (production), a PEM public key, or a
shared secret (the local dev stack only). Missing, malformed or expired tokens get 401;
a valid token without a permitted role gets 403. Neither reaches a handler.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from casetrail.contracts.access import Role, Route
from casetrail.runtime.settings import ServiceSettings

ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]


class Unauthenticated(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Forbidden(Exception):
    def __init__(self, message: str, allowed: Iterable[Role]) -> None:
        super().__init__(message)
        self.message = message
        self.allowed = sorted(role.value for role in allowed)


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[Role]


class TokenVerifier:
    def __init__(self, settings: ServiceSettings) -> None:
        self.issuer = settings.auth_issuer
        self.audience = settings.auth_audience
        self.jwks = jwt.PyJWKClient(settings.auth_jwks_url) if settings.auth_jwks_url else None
        self.public_key = settings.auth_public_key
        secret = settings.auth_shared_secret
        self.shared_secret = secret.get_secret_value() if secret else None

    def _key(self, token: str) -> tuple[Any, list[str]]:
        if self.jwks is not None:
            return self.jwks.get_signing_key_from_jwt(token).key, ASYMMETRIC_ALGORITHMS
        if self.public_key is not None:
            return self.public_key, ASYMMETRIC_ALGORITHMS
        return self.shared_secret, ["HS256"]

    def verify(self, token: str) -> Principal:
        try:
            key, algorithms = self._key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token_expired", "the bearer token has expired") from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as error:
            raise Unauthenticated(
                "invalid_token", f"the bearer token is not valid: {error}"
            ) from None
        roles = claims.get("roles")
        if not isinstance(roles, list):
            raise Unauthenticated("invalid_token", "the token carries no roles claim")
        known = {role for role in roles if role in Role.__members__.values()}
        return Principal(subject=str(claims["sub"]), roles=frozenset(Role(r) for r in known))


def mint_token(
    secret: str,
    subject: str,
    roles: Iterable[Role | str],
    *,
    issuer: str,
    audience: str,
    ttl_seconds: int = 12 * 3600,
) -> str:
    """A token for the dev stack and tests, signed with the shared secret."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "roles": [Role(role).value for role in roles],
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


bearer = HTTPBearer(auto_error=False, description="JWT with a `roles` claim")


def authorizer(verifier: TokenVerifier, permissions: dict[Route, frozenset[Role]]) -> Any:
    """A FastAPI dependency that admits a request only if the table allows its caller."""

    async def authorize(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> Principal:
        route = request.scope.get("route")
        allowed = permissions.get((request.method, getattr(route, "path", "")), frozenset())
        if credentials is None:
            raise Unauthenticated("missing_token", "this endpoint needs a bearer token")
        principal = await run_in_threadpool(verifier.verify, credentials.credentials)
        if not principal.roles & allowed:
            raise Forbidden("your roles do not allow this", allowed)
        request.state.principal = principal
        return principal

    return authorize
