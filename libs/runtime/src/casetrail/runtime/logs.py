"""Structured JSON logs through structlog, one line per event, to stdout.

Libraries that log through the standard library (uvicorn, aiokafka, eventsourcing) are
rendered by the same processors, so every line a service prints is JSON.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.types import EventDict

SHARED_PROCESSORS: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(service_name: str, level: str = "INFO") -> None:
    def name_the_service(_: object, __: str, event: EventDict) -> EventDict:
        event.setdefault("service", service_name)
        return event

    shared = [*SHARED_PROCESSORS, name_the_service]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True


log = structlog.get_logger("casetrail")
