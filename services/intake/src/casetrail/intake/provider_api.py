"""Provider webhooks: Twilio, Meta WhatsApp Cloud API and SendGrid Inbound Parse.

Providers carry no Casetrail token; each request is authenticated by the provider's own
signature (or, for SendGrid Inbound Parse, which signs nothing, HTTP Basic credentials
set in its URL). A bad or missing signature is refused with 401 before anything is read
into a case, so nothing is recorded.
"""

from __future__ import annotations

import base64
import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import SecretStr
from starlette.datastructures import UploadFile

from casetrail.intake.api import InvalidMessage, accepted, record
from casetrail.intake.mail import MailFormatError, sendgrid_inbound
from casetrail.intake.settings import IntakeSettings
from casetrail.intake.webhooks import (
    WebhookFormatError,
    meta_messages,
    meta_verification_challenge,
    twilio_message,
    verify_meta,
    verify_twilio,
)
from casetrail.runtime.service import DomainError, service_of

webhooks = APIRouter(prefix="/v1/webhooks", tags=["provider webhooks"])

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
SIGNATURE_REFUSED = {401: {"description": "missing or invalid provider signature"}}


class InvalidSignature(DomainError):
    status_code = 401
    code = "invalid_signature"


class ProviderNotConfigured(DomainError):
    status_code = 404
    code = "provider_not_configured"


def settings_of(request: Request) -> IntakeSettings:
    settings = service_of(request).settings
    assert isinstance(settings, IntakeSettings)
    return settings


def _secret(value: SecretStr | None, provider: str) -> str:
    if value is None:
        raise ProviderNotConfigured(f"{provider} webhooks are not configured on this intake")
    return value.get_secret_value()


def public_url(request: Request, settings: IntakeSettings) -> str:
    """The URL the provider called and signed, which a proxy may have rewritten."""
    if settings.public_base_url is None:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return settings.public_base_url.rstrip("/") + request.url.path + query


@webhooks.post(
    "/twilio",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/xml": {}}}, **SIGNATURE_REFUSED},
)
async def twilio_inbound(
    request: Request,
    x_twilio_signature: Annotated[str | None, Header()] = None,
) -> Response:
    """Twilio Programmable Messaging (SMS and WhatsApp): form-encoded, signed over the URL."""
    settings = settings_of(request)
    token = _secret(settings.twilio_auth_token, "Twilio")
    url = public_url(request, settings)
    form = await request.form()
    params = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    if not verify_twilio(token, url, params, x_twilio_signature):
        raise _refused()
    try:
        message = twilio_message(dict(params))
    except WebhookFormatError as error:
        raise InvalidMessage(str(error)) from None
    await record(request, message)
    return Response(EMPTY_TWIML, media_type="text/xml")


@webhooks.get(
    "/meta", response_class=PlainTextResponse, responses={403: {"description": "bad token"}}
)
async def meta_handshake(request: Request) -> Response:
    """Meta's subscription handshake: echo `hub.challenge` when the verify token matches."""
    token = _secret(settings_of(request).meta_verify_token, "Meta")
    challenge = meta_verification_challenge(dict(request.query_params), token)
    if challenge is None:
        return JSONResponse(
            {"error": "verification_refused", "message": "hub.verify_token does not match"},
            status_code=403,
        )
    return PlainTextResponse(challenge)


@webhooks.post("/meta", responses=SIGNATURE_REFUSED)
async def meta_inbound(
    request: Request,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
) -> Any:
    """WhatsApp Cloud API notifications; status updates carry no message and record nothing."""
    secret = _secret(settings_of(request).meta_app_secret, "Meta")
    raw = await request.body()
    if not verify_meta(secret, raw, x_hub_signature_256):
        raise _refused()
    try:
        payload = json.loads(raw)
        messages = meta_messages(payload)
    except (ValueError, WebhookFormatError) as error:
        raise InvalidMessage(f"not a WhatsApp Cloud API notification: {error}") from None
    receipts = [accepted(await record(request, message)) for message in messages]
    return {"received": receipts}


@webhooks.post(
    "/sendgrid",
    responses={401: {"description": "missing or wrong Basic credentials"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": {"type": "object"}}},
        }
    },
)
async def sendgrid_parse(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Any:
    """SendGrid Inbound Parse (parsed fields or the raw MIME); replies thread onto cases."""
    settings = settings_of(request)
    password = _secret(settings.sendgrid_inbound_password, "SendGrid")
    if not _basic_matches(authorization, settings.sendgrid_inbound_username or "", password):
        raise _refused()
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    files = {
        k: (v.filename or k, v.content_type or "application/octet-stream", await v.read())
        for k, v in form.multi_items()
        if isinstance(v, UploadFile)
    }
    try:
        message = sendgrid_inbound(fields, files)
    except (MailFormatError, ValueError) as error:
        raise InvalidMessage(f"not a usable e-mail: {error}") from None
    return accepted(await record(request, message, files=list(message.attachments)))


def _basic_matches(header: str | None, username: str, password: str) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        given = base64.b64decode(header[6:], validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(given, f"{username}:{password}".encode())


def _refused() -> InvalidSignature:
    return InvalidSignature("the provider signature is missing or does not match")
