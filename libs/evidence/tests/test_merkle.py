"""The Merkle tree against the transparency-dev proof vectors, and its own proofs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casetrail.evidence import merkle

# RFC 6962's reference tree: the eight entries the transparency-dev vectors are built on.
REFERENCE_ENTRIES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
REFERENCE_LEAVES = [merkle.leaf_hash(entry) for entry in REFERENCE_ENTRIES]


def vectors(shared_data: Path, kind: str) -> list[tuple[str, dict]]:
    files = sorted((shared_data / "merkle").glob(f"{kind}_*.json"))
    assert files, f"no {kind} vectors"
    return [(path.name, json.loads(path.read_text())) for path in files]


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def test_every_inclusion_vector_is_judged_as_the_reference_judges_it(shared_data):
    for _name, case in vectors(shared_data, "inclusion"):
        proof = [b64(p) for p in case["proof"]]
        args = (case["leafIdx"], case["treeSize"], b64(case["leafHash"]), proof)
        if case["wantErr"]:
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(*args, b64(case["root"]))
        else:
            merkle.verify_inclusion(*args, b64(case["root"]))


def test_every_consistency_vector_is_judged_as_the_reference_judges_it(shared_data):
    for _name, case in vectors(shared_data, "consistency"):
        proof = [b64(p) for p in case["proof"]]
        args = (case["size1"], case["size2"], b64(case["root1"]), b64(case["root2"]), proof)
        if case["wantErr"]:
            with pytest.raises(merkle.ProofError):
                merkle.verify_consistency(*args)
        else:
            merkle.verify_consistency(*args)


def test_our_roots_and_proofs_are_the_reference_ones(shared_data):
    for _name, case in vectors(shared_data, "consistency"):
        if case["wantErr"]:
            continue
        assert merkle.root(REFERENCE_LEAVES[: case["size1"]]) == b64(case["root1"])
        assert merkle.root(REFERENCE_LEAVES[: case["size2"]]) == b64(case["root2"])
        proof = merkle.consistency_proof(case["size1"], REFERENCE_LEAVES[: case["size2"]])
        assert proof == [b64(p) for p in case["proof"]]
    for _name, case in vectors(shared_data, "inclusion"):
        if not case["wantErr"]:
            leaves = REFERENCE_LEAVES[: case["treeSize"]]
            assert merkle.inclusion_proof(case["leafIdx"], leaves) == [
                b64(p) for p in case["proof"]
            ]


entries = st.lists(st.binary(max_size=16), min_size=1, max_size=70)


@settings(max_examples=150, deadline=None)
@given(entries, st.data())
def test_every_leaf_is_proven_in_and_a_changed_leaf_is_not(items, data):
    leaves = [merkle.leaf_hash(item) for item in items]
    head = merkle.root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = merkle.inclusion_proof(index, leaves)
    merkle.verify_inclusion(index, len(leaves), leaves[index], proof, head)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index, len(leaves), merkle.leaf_hash(b"forged"), proof, head)


@settings(max_examples=150, deadline=None)
@given(entries, st.data())
def test_a_grown_log_is_proven_to_extend_every_earlier_size(items, data):
    leaves = [merkle.leaf_hash(item) for item in items]
    first = data.draw(st.integers(1, len(leaves)))
    proof = merkle.consistency_proof(first, leaves)
    merkle.verify_consistency(
        first, len(leaves), merkle.root(leaves[:first]), merkle.root(leaves), proof
    )
    if first < len(leaves):
        rewritten = [merkle.leaf_hash(b"rewritten"), *leaves[1:]]
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(
                first, len(leaves), merkle.root(rewritten[:first]), merkle.root(leaves), proof
            )


def rfc_root(leaves: list[bytes]) -> bytes:
    """MTH as RFC 6962 section 2.1 defines it, with nothing kept between calls."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(rfc_root(leaves[:k]), rfc_root(leaves[k:]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=4), min_size=1, max_size=140), st.data())
def test_a_log_grown_leaf_by_leaf_keeps_every_earlier_root(items, data):
    log = merkle.MerkleLog()
    leaves = [merkle.leaf_hash(item) for item in items]
    for grown, leaf in enumerate(leaves, start=1):
        log.append(leaf)
        earlier = data.draw(st.integers(1, grown))
        assert log.root(earlier) == rfc_root(leaves[:earlier])
        index = data.draw(st.integers(0, earlier - 1))
        merkle.verify_inclusion(
            index,
            earlier,
            leaves[index],
            log.inclusion_proof(index, earlier),
            rfc_root(leaves[:earlier]),
        )


def test_a_log_refuses_sizes_it_has_not_reached():
    log = merkle.MerkleLog(REFERENCE_LEAVES[:3])
    assert log.root(0) == merkle.EMPTY_ROOT
    for call in (
        lambda: log.root(4),
        lambda: log.inclusion_proof(3),
        lambda: log.consistency_proof(2, 5),
    ):
        with pytest.raises(merkle.ProofError):
            call()
