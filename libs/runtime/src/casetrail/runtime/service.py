"""Assembles a service: its FastAPI app, health checks, errors, metrics, background work.

A service hands over what it is made of (its event store, its consumers, its relay, its
background loops); this module starts them when PostgreSQL and Kafka can be reached,
keeps retrying until they can, and stops them in order on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from starlette.exceptions import HTTPException as StarletteHTTPException

from casetrail.contracts.access import PROVIDER_SIGNED, PUBLIC_PATHS, Role, Route, permissions_for
from casetrail.runtime.auth import Forbidden, TokenVerifier, Unauthenticated, authorizer
from casetrail.runtime.consumer import Handler, TrackedConsumer, positions_metadata
from casetrail.runtime.eventstore import ServiceApplication
from casetrail.runtime.faults import is_bad_data, is_transient
from casetrail.runtime.kafka import build_producer, kafka_reachable
from casetrail.runtime.keyring import KeyDestroyed
from casetrail.runtime.limits import BodySizeLimit
from casetrail.runtime.logs import configure_logging, log
from casetrail.runtime.relay import OutboxRelay
from casetrail.runtime.settings import ServiceSettings, asyncpg_url


def _check_permission_table(
    app: FastAPI, permissions: dict[Route, frozenset[Role]], signed: frozenset[Route]
) -> None:
    """Every route has a row in the permission table (or is provider-signed), and every
    row has a route."""
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path not in PUBLIC_PATHS
        for method in operations
    }
    unsigned = routes - signed
    if not signed <= routes:
        raise RuntimeError(f"provider-signed routes missing: {sorted(signed - routes)}")
    if unsigned != set(permissions):
        raise RuntimeError(
            "permission table and routes differ: "
            f"unlisted routes {sorted(routes - set(permissions))}, "
            f"rows without a route {sorted(set(permissions) - routes)}"
        )


class DomainError(Exception):
    """A refusal by the domain; each subclass names its HTTP status and error code."""

    status_code = 409
    code = "conflict"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class UnstorableValue(DomainError):
    """PostgreSQL cannot hold the value (a NUL character, a number out of range)."""

    status_code = 422
    code = "unstorable_value"


async def refuse_nul_characters(request: Request) -> None:
    """A route dependency: a NUL in a JSON body fits no text or jsonb column, so nothing
    that carries one is accepted."""
    if request.headers.get("content-type", "").startswith("application/json"):
        if b"\\u0000" in await request.body():
            raise UnstorableValue("NUL characters (\\u0000) are not accepted")


class NotReady(DomainError):
    status_code = 503
    code = "not_ready"


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **details}


@dataclass
class Components:
    """What the running service holds once its dependencies answered."""

    engine: AsyncEngine
    app: ServiceApplication | None
    producer: Any
    consumers: list[TrackedConsumer] = field(default_factory=list)
    relay: OutboxRelay | None = None


ConsumerSpec = tuple[str, tuple[str, ...], Callable[["Components"], Handler]]
BackgroundLoop = Callable[["Components", asyncio.Event], Awaitable[None]]


def periodically(
    step: Callable[[Components], Awaitable[int]], every_seconds: float, did: str
) -> BackgroundLoop:
    """A background loop running `step` every so often until the service stops.

    A failed round is logged and retried on the next one: the work it left is still there.
    """

    async def run(components: Components, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                done = await step(components)
                if done:
                    log.info(did, count=done)
            except Exception as error:
                log.warning(f"{did}_retrying", error=repr(error))
            try:
                await asyncio.wait_for(stopping.wait(), every_seconds)
            except TimeoutError:
                pass

    return run


App = TypeVar("App", bound=ServiceApplication)
# Builds the service's event store from (database URL, pool size, create tables): the
# class itself, or a partial of it carrying the service's own settings.
ApplicationFactory = Callable[[str, int, bool], ServiceApplication]


def service_of(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def components_of(request: Request) -> Components:
    """What the running service holds; 503 while it is still connecting."""
    return service_of(request).require()


def application_of(request: Request, kind: type[App]) -> App:
    app = components_of(request).app
    if not isinstance(app, kind):
        raise TypeError(f"this service's event store is not a {kind.__name__}")
    return app


class Service:
    """One Casetrail service: its settings, what it stores, consumes and publishes."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        title: str,
        application: ApplicationFactory | None = None,
        publishes_to: str | None = None,
        tables: MetaData | None = None,
        consumers: tuple[ConsumerSpec, ...] = (),
        loops: tuple[BackgroundLoop, ...] = (),
        schema_setup: Callable[[AsyncConnection, str], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.title = title
        self.application = application
        self.publishes_to = publishes_to
        self.tables = tables
        self.consumer_specs = consumers
        self.loops = loops
        self.schema_setup = schema_setup
        self.components: Components | None = None
        self.last_readiness: dict[str, bool] = {"started": False}
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []

    def require(self) -> Components:
        if self.components is None:
            raise NotReady("the service is still connecting to PostgreSQL and Kafka")
        return self.components

    async def set_up_schema(self) -> None:
        """Creates or updates tables as the schema's owner, then narrows what the runtime
        role may do: stored events are appended, never deleted."""
        settings = self.settings
        owner_url = settings.schema_database_url or settings.database_url
        separate_owner = owner_url != settings.database_url
        engine = create_async_engine(asyncpg_url(owner_url), poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(positions_metadata.create_all)
                if self.tables is not None:
                    await conn.run_sync(self.tables.create_all)
                if self.schema_setup is not None:
                    await self.schema_setup(conn, settings.runtime_role if separate_owner else "")
            if self.application is not None:
                app = await asyncio.to_thread(self.application, owner_url, 1, True)
                events_table = app.events_table
                app.close()
                if separate_owner:
                    async with engine.begin() as conn:
                        await conn.execute(
                            text(
                                f'REVOKE DELETE, TRUNCATE ON "{events_table}" '
                                f'FROM "{settings.runtime_role}"'
                            )
                        )
        finally:
            await engine.dispose()

    async def connect(self) -> Components:
        """Opens the service's storage and Kafka producer; on failure closes what it opened."""
        settings = self.settings
        await self.set_up_schema()
        engine = create_async_engine(
            settings.async_database_url,
            pool_size=settings.database_pool_size,
            pool_pre_ping=True,
        )
        app: ServiceApplication | None = None
        producer = build_producer(settings.kafka, settings.service_name)
        try:
            if self.application is not None:
                app = await asyncio.to_thread(
                    self.application, settings.database_url, settings.database_pool_size, False
                )
            await producer.start()
        except BaseException:
            await producer.stop()
            if app is not None:
                app.close()
            await engine.dispose()
            raise
        return Components(engine=engine, app=app, producer=producer)

    async def _start(self) -> None:
        while not self.stopping.is_set():
            try:
                components = await self.connect()
                break
            except Exception as error:
                log.warning("dependencies_unreachable", error=repr(error))
                await asyncio.sleep(1.0)
        else:
            return
        settings = self.settings
        for group, topics, build_handler in self.consumer_specs:
            consumer = TrackedConsumer(
                kafka=settings.kafka,
                group_id=group,
                topics=topics,
                handler=build_handler(components),
                dead_letters=components.producer,
                retry_seconds=settings.consumer_retry_seconds,
                kill_after_handling=settings.failpoint_kill_after_handling,
            )
            components.consumers.append(consumer)
            self.tasks.append(asyncio.create_task(consumer.run()))
        if self.publishes_to and components.app is not None:
            components.relay = OutboxRelay(
                app=components.app,
                database_url=settings.database_url,
                kafka=settings.kafka,
                topic=self.publishes_to,
                source=settings.source,
                poll_seconds=settings.relay_poll_seconds,
                batch_size=settings.relay_batch_size,
            )
            self.tasks.append(asyncio.create_task(components.relay.run()))
        for loop in (*self.loops, self._watch_readiness):
            self.tasks.append(asyncio.create_task(loop(components, self.stopping)))
        self.components = components
        log.info("service_started", title=self.title)

    async def _stop(self) -> None:
        self.stopping.set()
        components = self.components
        if components is not None:
            for consumer in components.consumers:
                await consumer.stop()
            if components.relay is not None:
                await components.relay.stop()
        # Consumers finish the record in hand and commit; give them a moment, then cancel.
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if components is not None:
            await components.producer.stop()
            await components.engine.dispose()
            if components.app is not None:
                components.app.close()

    async def readiness(self) -> dict[str, bool]:
        components = self.components
        if components is None:
            return {"postgres": False, "kafka": False, "started": False}
        postgres = True
        try:
            async with asyncio.timeout(2):
                async with components.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception:
            postgres = False
        try:
            async with asyncio.timeout(2):
                kafka = await kafka_reachable(components.producer)
        except TimeoutError:
            kafka = False
        checks = {"postgres": postgres, "kafka": kafka, "started": True}
        self.last_readiness = checks
        return checks

    async def _watch_readiness(self, components: Components, stopping: asyncio.Event) -> None:
        """Keeps `last_readiness` fresh, so write paths can refuse at once when a
        dependency is down instead of each request finding out the slow way."""
        while not stopping.is_set():
            await self.readiness()
            try:
                await asyncio.wait_for(stopping.wait(), self.settings.readiness_poll_seconds)
            except TimeoutError:
                pass

    def require_ready(self) -> None:
        """For write paths that must not accept what cannot be carried through now."""
        down = sorted(name for name, ok in self.last_readiness.items() if not ok)
        if down:
            raise NotReady(
                "a dependency is unreachable; nothing was recorded, retry shortly",
                unavailable=down,
            )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Connects, consumes and runs the loops in the background until the block ends."""
        starter = asyncio.create_task(self._start())
        try:
            yield
        finally:
            self.stopping.set()
            try:
                await starter
            finally:
                await self._stop()

    def build_app(self, *routers: Any, provider_signed: Any = None) -> FastAPI:
        """`routers` need a token with a permitted role; `provider_signed` routes check the
        provider's signature themselves and must be listed in `PROVIDER_SIGNED`."""
        configure_logging(self.settings.service_name, self.settings.log_level)

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            async with self.running():
                yield

        app = FastAPI(title=self.title, lifespan=lifespan)
        app.add_middleware(BodySizeLimit, max_bytes=self.settings.max_request_bytes)
        app.state.service = self

        @app.get("/healthz", tags=["health"])
        async def healthz() -> dict[str, str]:
            return {"status": "alive"}

        @app.get("/readyz", tags=["health"])
        async def readyz() -> JSONResponse:
            checks = await self.readiness()
            ready = all(checks.values())
            return JSONResponse(
                {"ready": ready, "checks": checks}, status_code=200 if ready else 503
            )

        @app.exception_handler(Unauthenticated)
        async def unauthenticated(_: Request, error: Unauthenticated) -> JSONResponse:
            return JSONResponse(
                error_body(error.code, error.message),
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )

        @app.exception_handler(Forbidden)
        async def forbidden(_: Request, error: Forbidden) -> JSONResponse:
            return JSONResponse(
                error_body("forbidden", error.message, allowed_roles=error.allowed),
                status_code=403,
            )

        @app.exception_handler(DomainError)
        async def domain_error(_: Request, error: DomainError) -> JSONResponse:
            headers = {"Retry-After": "1"} if error.status_code == 503 else None
            return JSONResponse(
                error_body(error.code, error.message, **error.details),
                status_code=error.status_code,
                headers=headers,
            )

        @app.exception_handler(RequestValidationError)
        async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
            details = [
                {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
                for item in error.errors()
            ]
            return JSONResponse(
                error_body("validation_failed", "the request is not valid", detail=details),
                status_code=422,
            )

        @app.exception_handler(StarletteHTTPException)
        async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
            return JSONResponse(
                error_body(f"http_{error.status_code}", str(error.detail)),
                status_code=error.status_code,
                headers=getattr(error, "headers", None),
            )

        @app.exception_handler(KeyDestroyed)
        async def erased(_: Request, error: KeyDestroyed) -> JSONResponse:
            return JSONResponse(
                error_body("personal_data_erased", str(error), owner=error.owner),
                status_code=410,
            )

        @app.exception_handler(Exception)
        async def unexpected(request: Request, error: Exception) -> JSONResponse:
            if is_bad_data(error):
                return await domain_error(request, UnstorableValue("a value cannot be stored"))
            if is_transient(error):
                log.warning("dependency_unavailable", error=repr(error))
                return JSONResponse(
                    error_body("dependency_unavailable", "storage is unreachable; retry shortly"),
                    status_code=503,
                    headers={"Retry-After": "2"},
                )
            log.error("request_failed", error=repr(error), exc_info=error)
            return JSONResponse(
                error_body("internal_error", "the request failed; it has been logged"),
                status_code=500,
            )

        permissions = permissions_for(self.settings.service_name)
        guard = Depends(authorizer(TokenVerifier(self.settings), permissions))
        refuse_nul = Depends(refuse_nul_characters)
        for router in routers:
            app.include_router(router, dependencies=[guard, refuse_nul])
        if provider_signed is not None:
            app.include_router(provider_signed)

        @app.get("/metrics", tags=["operations"], dependencies=[guard])
        async def metrics() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        signed = PROVIDER_SIGNED.get(self.settings.service_name, frozenset())
        _check_permission_table(app, permissions, signed)

        return app
