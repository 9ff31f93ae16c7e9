"""This process's copy of the global Merkle log, kept in step with PostgreSQL, and the
signing of its tree heads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casetrail.audit.store import latest_tree_head, leaves_from, save_tree_head, tree_head_at
from casetrail.evidence.merkle import MerkleLog
from casetrail.evidence.tree_head import TreeHead, sign_tree_head
from casetrail.runtime.service import BackgroundLoop, Components, periodically


class LogMirror:
    """Leaves are never changed and always become visible as a prefix, so the copy only
    ever reads the leaves it has not seen yet."""

    def __init__(self, signing_key: Ed25519PrivateKey) -> None:
        self.tree = MerkleLog()
        self.signing_key = signing_key
        self._reading = asyncio.Lock()

    async def catch_up(self, conn: AsyncConnection) -> int:
        async with self._reading:
            for leaf in await leaves_from(conn, len(self.tree)):
                self.tree.append(leaf)
            return len(self.tree)

    async def sign_if_grown(self, engine: AsyncEngine) -> TreeHead | None:
        """Signs the log as it stands if it grew since the last head: the new head, or None."""
        async with engine.begin() as conn:
            size = await self.catch_up(conn)
            latest = await latest_tree_head(conn)
            if not size or (latest is not None and latest.tree_size >= size):
                return None
            head = sign_tree_head(self.signing_key, size, self.tree.root(size), datetime.now(UTC))
            await save_tree_head(conn, head)
            return await tree_head_at(conn, size)


def tree_head_publisher(mirror: LogMirror, every_seconds: float) -> BackgroundLoop:
    async def publish(components: Components) -> int:
        return int(await mirror.sign_if_grown(components.engine) is not None)

    return periodically(publish, every_seconds, "tree_head_published")
