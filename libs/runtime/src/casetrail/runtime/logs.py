"""Structured JSON logs through structlog, one line per event, to stdout.

Libraries that log through the standard library (uvicorn, aiokafka, eventsourcing) are
rendered by the same processors, so every line a service prints is JSON.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.types import EventDict

SHARED_PROCESSORS: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


# Personal data must never reach a log line. Names and free text are never logged at all;
# these patterns catch what can slip in through a library's message or an exception:
# contact details, and query strings (an access log line carries the full URL).
PERSONAL_DATA = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (re.compile(r"\+[1-9]\d{6,14}(?!\d)"), "[phone]"),
    (re.compile(r'(\s/[^\s?"]*)\?[^\s"]*'), r"\1?[query]"),
)
KEPT_AS_IS = frozenset({"timestamp", "level", "logger", "service"})


def scrub(text: str) -> str:
    for pattern, replacement in PERSONAL_DATA:
        text = pattern.sub(replacement, text)
    return text


def redact_personal_data(_: object, __: str, event: EventDict) -> EventDict:
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return scrub(value)
        if isinstance(value, list | tuple):
            return [clean(item) for item in value]
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        return value

    return {key: value if key in KEPT_AS_IS else clean(value) for key, value in event.items()}


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
            redact_personal_data,
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
