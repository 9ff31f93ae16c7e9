"""Kafka topic names and the partition key: the only place they are spelled."""

from __future__ import annotations

from typing import Final

INTAKE_EVENTS: Final = "casetrail.intake.events"
TRIAGE_EVENTS: Final = "casetrail.triage.events"
SLA_EVENTS: Final = "casetrail.sla.events"
REFUNDS_EVENTS: Final = "casetrail.refunds.events"

EVENT_TOPICS: Final = (INTAKE_EVENTS, TRIAGE_EVENTS, SLA_EVENTS, REFUNDS_EVENTS)

DEAD_LETTER_SUFFIX: Final = ".dlq"


def dead_letter_topic(topic: str) -> str:
    return topic + DEAD_LETTER_SUFFIX


DEAD_LETTER_TOPICS: Final = tuple(dead_letter_topic(t) for t in EVENT_TOPICS)
ALL_TOPICS: Final = EVENT_TOPICS + DEAD_LETTER_TOPICS

# Topic configuration: event topics are the record of the business and are kept forever.
TOPIC_CONFIG: Final = {"retention.ms": "-1", "min.insync.replicas": "1"}


def partition_key(case_id: object) -> bytes:
    """All events of one case share a key, so they land on one partition, in order."""
    return str(case_id).encode()
