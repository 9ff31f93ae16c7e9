"""Every route of every service, with every role and with no token, against the table."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest

from casetrail.contracts.access import PROVIDER_SIGNED, PUBLIC_PATHS, Role, permissions_for

pytestmark = pytest.mark.e2e

SERVICES = ("intake", "triage", "sla_timer", "refunds", "audit")


def operations(stack, service):
    """Every token-guarded operation (provider webhooks check their own signatures)."""
    signed = PROVIDER_SIGNED.get(service.replace("_", "-"), frozenset())
    document = httpx.get(f"{stack.service_url(service)}/openapi.json").json()
    for path, methods in document["paths"].items():
        if path in PUBLIC_PATHS:
            continue
        for method in methods:
            if (method.upper(), path) not in signed:
                yield method.upper(), path


def test_a_token_is_no_substitute_for_a_provider_signature(stack):
    every_role = stack.auth_headers(*(role.value for role in Role))
    for method, path in PROVIDER_SIGNED["intake"] - {("GET", "/v1/webhooks/meta")}:
        response = httpx.request(
            method, f"{stack.service_url('intake')}{path}", headers=every_role, data={"a": "b"}
        )
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"] == "invalid_signature"


def call(stack, service, method, path, headers):
    concrete = path
    for name in ("case_id", "refund_id"):
        concrete = concrete.replace("{" + name + "}", str(uuid.uuid4()))
    return httpx.request(
        method, f"{stack.service_url(service)}{concrete}", headers=headers, json={}
    )


@pytest.mark.parametrize("service", SERVICES)
def test_each_route_admits_exactly_the_roles_the_table_names(stack, service):
    table = permissions_for(service.replace("_", "-"))
    seen = set()
    for method, path in operations(stack, service):
        seen.add((method, path))
        allowed = table[(method, path)]
        for role in Role:
            response = call(stack, service, method, path, stack.auth_headers(role.value))
            if role in allowed:
                assert response.status_code not in (401, 403), (method, path, role)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                assert set(response.json()["allowed_roles"]) == {r.value for r in allowed}
    assert seen == set(table), "the OpenAPI document and the permission table differ"


@pytest.mark.parametrize("service", SERVICES)
def test_missing_malformed_and_expired_tokens_get_401(stack, service, infra):
    from casetrail.runtime.auth import mint_token

    expired = mint_token(
        stack.auth_secret(),
        "someone",
        ["ops", "agent", "auditor", "channel"],
        issuer=infra.DEV_TOKEN_ISSUER,
        audience=infra.DEV_TOKEN_AUDIENCE,
        ttl_seconds=-60,
    )
    forged = mint_token(
        "not-the-secret-" * 4,
        "someone",
        list(Role),
        issuer=infra.DEV_TOKEN_ISSUER,
        audience=infra.DEV_TOKEN_AUDIENCE,
    )
    cases = {
        "missing_token": {},
        "invalid_token": {"Authorization": "Bearer not.a.jwt"},
        "token_expired": {"Authorization": f"Bearer {expired}"},
    }
    for method, path in operations(stack, service):
        for code, headers in cases.items():
            response = call(stack, service, method, path, headers)
            assert response.status_code == 401, (method, path, code)
            assert response.json()["error"] == code
            assert response.headers["WWW-Authenticate"] == "Bearer"
        response = call(stack, service, method, path, {"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401 and response.json()["error"] == "invalid_token"


def test_a_refused_caller_records_nothing(stack):
    def stored_events() -> int:
        with psycopg.connect(stack.database_url("intake")) as conn:
            return conn.execute("SELECT count(*) FROM intake_events").fetchone()[0]

    body = {"channel": "email", "customer_ref": "x", "subject": "s", "description": "d"}
    before = stored_events()
    url = f"{stack.service_url('intake')}/v1/cases"
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers=stack.auth_headers("auditor")).status_code == 403
    assert stored_events() == before


def test_health_and_the_api_description_need_no_token(stack):
    for service in SERVICES:
        for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
            assert httpx.get(f"{stack.service_url(service)}{path}").status_code == 200
