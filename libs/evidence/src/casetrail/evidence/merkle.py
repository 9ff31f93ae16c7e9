"""An RFC 6962 / RFC 9162 Merkle tree over a log's entries: roots, and the proofs that let
anyone check, with hashes alone, that an entry is in the log (inclusion) and that a later
log only extends an earlier one (consistency). Pure: hashes in, hashes out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not prove what it claims."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (the left subtree's size)."""
    return 1 << ((size - 1).bit_length() - 1)


class MerkleLog:
    """A growing log's leaf hashes, for roots and proofs at any size it has reached.

    A complete power-of-two subtree never changes once its leaves exist, so each is hashed
    once and kept: roots and proofs then cost O(log² n) hashes instead of O(n).
    """

    # Small subtrees are cheaper to rehash than to keep.
    SMALLEST_KEPT = 8

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self._leaves: list[bytes] = list(leaves)
        self._complete: dict[tuple[int, int], bytes] = {}

    def __len__(self) -> int:
        return len(self._leaves)

    def append(self, leaf: bytes) -> None:
        self._leaves.append(leaf)

    def leaf(self, index: int) -> bytes:
        return self._leaves[index]

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[size]): the tree head of the first `size` leaves (all by default)."""
        size = len(self) if size is None else self._reached(size)
        return self._hash(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]): the audit path of a leaf in the tree of `size` leaves."""
        size = len(self) if size is None else self._reached(size)
        if not 0 <= index < size:
            raise ProofError(f"leaf {index} is not in a tree of {size}")
        return self._path(index, 0, size)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """PROOF(first, D[second]): that the tree of `first` leaves is a prefix of `second`."""
        second = len(self) if second is None else self._reached(second)
        if not 0 < first <= second:
            raise ProofError(f"no consistency proof from {first} to {second}")
        return self._subproof(first, 0, second, complete=True)

    def _reached(self, size: int) -> int:
        if not 0 <= size <= len(self):
            raise ProofError(f"the log has {len(self)} leaves, not {size}")
        return size

    def _hash(self, start: int, size: int) -> bytes:
        if size == 1:
            return self._leaves[start]
        k = _split(size)
        if k * 2 != size or size < self.SMALLEST_KEPT:
            return node_hash(self._hash(start, k), self._hash(start + k, size - k))
        kept = self._complete.get((start, size))
        if kept is None:
            kept = node_hash(self._hash(start, k), self._hash(start + k, k))
            self._complete[(start, size)] = kept
        return kept

    def _path(self, index: int, start: int, size: int) -> list[bytes]:
        if size == 1:
            return []
        k = _split(size)
        if index < k:
            return [*self._path(index, start, k), self._hash(start + k, size - k)]
        return [*self._path(index - k, start + k, size - k), self._hash(start, k)]

    def _subproof(self, first: int, start: int, size: int, complete: bool) -> list[bytes]:
        if first == size:
            return [] if complete else [self._hash(start, size)]
        k = _split(size)
        if first <= k:
            return [*self._subproof(first, start, k, complete), self._hash(start + k, size - k)]
        return [
            *self._subproof(first - k, start + k, size - k, complete=False),
            self._hash(start, k),
        ]


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree head of the leaf hashes, MTH(D[n])."""
    return MerkleLog(leaves).root()


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf `index`."""
    return MerkleLog(leaves).inclusion_proof(index)


def consistency_proof(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): that the tree of the first `first` leaves is a prefix of this one."""
    return MerkleLog(leaves).consistency_proof(first)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """RFC 9162 section 2.1.3.2; raises ProofError unless the proof holds."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is outside a tree of {size}")
    node, last, computed = index, size - 1, leaf
    for sibling in proof:
        if last == 0:
            raise ProofError("the proof is longer than the tree is deep")
        if node & 1 or node == last:
            computed = node_hash(sibling, computed)
            while not node & 1 and node != 0:
                node, last = node >> 1, last >> 1
        else:
            computed = node_hash(computed, sibling)
        node, last = node >> 1, last >> 1
    if last != 0 or computed != expected_root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2; raises ProofError unless the proof holds."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency between sizes {first} and {second}")
    if first == second:
        if proof or first_root != second_root:
            raise ProofError("equal sizes need equal roots and an empty proof")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first tree is a subtree here
        path.insert(0, first_root)
    node, last = first - 1, second - 1
    while node & 1:
        node, last = node >> 1, last >> 1
    first_computed = second_computed = path[0]
    for sibling in path[1:]:
        if last == 0:
            raise ProofError("the proof is longer than the tree is deep")
        if node & 1 or node == last:
            first_computed = node_hash(sibling, first_computed)
            second_computed = node_hash(sibling, second_computed)
            while not node & 1 and node != 0:
                node, last = node >> 1, last >> 1
        else:
            second_computed = node_hash(second_computed, sibling)
        node, last = node >> 1, last >> 1
    if last != 0 or first_computed != first_root or second_computed != second_root:
        raise ProofError("the consistency proof does not lead to both roots")
