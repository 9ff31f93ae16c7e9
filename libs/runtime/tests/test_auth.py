import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from casetrail.contracts.access import Role
from casetrail.runtime.auth import TokenVerifier, Unauthenticated, mint_token
from casetrail.runtime.settings import ServiceSettings

SECRET = "s" * 40
DB = "postgresql://u:p@127.0.0.1:5432/db"


def settings(**auth):
    return ServiceSettings(service_name="test", database_url=DB, **auth)


def test_exactly_one_key_source_must_be_configured():
    with pytest.raises(ValidationError, match="exactly one"):
        settings()
    with pytest.raises(ValidationError, match="exactly one"):
        settings(auth_shared_secret=SECRET, auth_jwks_url="http://127.0.0.1/jwks")
    with pytest.raises(ValidationError, match="at least 32"):
        settings(auth_shared_secret="short")


def test_a_dev_token_names_its_subject_and_roles():
    verifier = TokenVerifier(settings(auth_shared_secret=SECRET))
    token = mint_token(SECRET, "agent-7", ["agent"], issuer="casetrail-dev", audience="casetrail")
    principal = verifier.verify(token)
    assert principal.subject == "agent-7" and principal.roles == {Role.AGENT}


def test_a_token_for_another_audience_or_issuer_is_refused():
    verifier = TokenVerifier(settings(auth_shared_secret=SECRET))
    for issuer, audience in (("casetrail-dev", "elsewhere"), ("someone-else", "casetrail")):
        token = mint_token(SECRET, "x", ["agent"], issuer=issuer, audience=audience)
        with pytest.raises(Unauthenticated) as refused:
            verifier.verify(token)
        assert refused.value.code == "invalid_token"


def test_a_token_signed_by_the_configured_public_key_is_accepted_and_no_other():
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        issuer_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenVerifier(settings(auth_public_key=public_pem))
    claims = {
        "sub": "sup-1",
        "roles": ["supervisor", "not-a-role"],
        "iss": "casetrail-dev",
        "aud": "casetrail",
        "exp": int(time.time()) + 60,
    }
    assert verifier.verify(jwt.encode(claims, issuer_key, algorithm="ES256")).roles == {
        Role.SUPERVISOR
    }
    impostor = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(Unauthenticated):
        verifier.verify(jwt.encode(claims, impostor, algorithm="ES256"))
    # An HS256 token "signed" with the public key text must not pass (algorithm confusion).
    with pytest.raises(Unauthenticated):
        verifier.verify(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_a_token_without_roles_is_refused():
    verifier = TokenVerifier(settings(auth_shared_secret=SECRET))
    token = jwt.encode(
        {"sub": "x", "iss": "casetrail-dev", "aud": "casetrail", "exp": int(time.time()) + 60},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(Unauthenticated, match="no roles"):
        verifier.verify(token)
