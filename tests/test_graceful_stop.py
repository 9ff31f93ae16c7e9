"""SIGTERM drains: requests in flight finish, and nothing a 202 promised is lost."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

pytestmark = pytest.mark.e2e


async def test_sigterm_lets_in_flight_requests_finish_and_loses_nothing(stack):
    url = f"{stack.service_url('intake')}/v1/cases"
    headers = stack.auth_headers("channel")
    body = {"channel": "sms", "customer_ref": "acct-t", "subject": "Bye", "description": "SIGTERM"}

    async def post(client: httpx.AsyncClient, n: int) -> httpx.Response | None:
        try:
            return await client.post(
                url, json=body, headers=headers | {"Idempotency-Key": f"term-{time.time_ns()}-{n}"}
            )
        except httpx.HTTPError:
            return None  # refused at the door once the server stopped listening

    async with httpx.AsyncClient(timeout=30) as client:
        requests = [asyncio.create_task(post(client, n)) for n in range(60)]
        await asyncio.sleep(0.3)
        await asyncio.to_thread(stack.stop_service, "intake", signal.SIGTERM)
        responses = await asyncio.gather(*requests)
    accepted = [r.json()["case_id"] for r in responses if r is not None and r.status_code == 202]
    assert accepted, "no request completed before the stop"
    assert all(r is None or r.status_code in (202, 503) for r in responses)

    await asyncio.to_thread(stack.start_service, "intake")
    auditor = stack.auth_headers("auditor")
    async with httpx.AsyncClient(timeout=30) as client, asyncio.timeout(120):
        for case_id in accepted:
            history = f"{stack.service_url('audit')}/v1/cases/{case_id}/history"
            while (await client.get(history, headers=auditor)).status_code != 200:
                await asyncio.sleep(0.25)
