"""The Merkle tree over the custody ledger: signed roots, and inclusion paths of log2(n) hashes that lead
from an entry to the root a checkpoint signed — and nowhere else when anything on the way was changed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from recordings import ledger, ledger_tree
from recordings.lib import ledger as chain
from recordings.models import Checkpoint, LedgerEntry, LedgerNode
from recordings.pipeline.checkpoints import PREFIX, make_checkpoint
from recordings.pipeline.custody_check import verify_custody
from recordings.pipeline.target import get_target

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def leaves(n: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]


def reference_path(items: list[str], index: int) -> list[tuple[str, str]]:
    """RFC 9162's PATH(m, D[n]), written the way the RFC writes it."""
    if len(items) <= 1:
        return []
    k = chain.split(len(items))
    if index < k:
        return reference_path(items[:k], index) + [("R", chain.tree_root(items[k:]))]
    return reference_path(items[k:], index - k) + [("L", chain.tree_root(items[:k]))]


def test_the_tree_has_rfc_9162_shape() -> None:
    a, b, c = leaves(3)
    assert chain.tree_root([a]) == a
    assert chain.tree_root([a, b, c]) == chain.node(chain.node(a, b), c)
    assert chain.node(a, b) == hashlib.sha256(f"node {a} {b}\n".encode()).hexdigest()
    assert chain.tree_root([]) == hashlib.sha256(b"").hexdigest()


def test_the_frontier_makes_the_same_root_at_every_size() -> None:
    items, frontier = leaves(300), chain.Frontier()
    assert frontier.root() == chain.EMPTY_ROOT
    for n, leaf in enumerate(items, start=1):
        frontier.add(leaf)
        assert frontier.root() == chain.tree_root(items[:n]), n
    assert len(frontier.peaks) == bin(300).count("1")  # log2(n) hashes of memory


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 600), data=st.data())
def test_every_path_leads_to_the_root_and_a_changed_one_does_not(size: int, data: st.DataObject) -> None:
    items = leaves(size)
    root = chain.tree_root(items)
    index = data.draw(st.integers(0, size - 1))
    path = reference_path(items, index)
    assert len(path) <= (size - 1).bit_length()
    assert chain.audit_path_root(items[index], index, size, path) == root
    assert chain.audit_path_root(leaves(size + 1)[-1], index, size, path) != root  # another leaf
    if path:
        at = data.draw(st.integers(0, len(path) - 1))
        side, sibling = path[at]
        changed = [*path[:at], (side, hashlib.sha256(sibling.encode()).hexdigest()), *path[at + 1 :]]
        assert chain.audit_path_root(items[index], index, size, changed) != root
        flipped = [*path[:at], ("L" if side == "R" else "R", sibling), *path[at + 1 :]]
        assert chain.audit_path_root(items[index], index, size, flipped) is None  # the wrong shape
        assert chain.audit_path_root(items[index], index, size, path[:-1]) != root  # cut short
    if size > 1:  # a path is bound to its place: the same leaf claimed at another place fails
        other = (index + 1) % size
        assert chain.audit_path_root(items[index], other, size, path) != root


def append(n: int) -> None:
    with transaction.atomic():
        for i in range(n):
            ledger.append_record("test_entry", {"i": i})


def stored_leaves() -> list[str]:
    return list(LedgerEntry.objects.order_by("seq").values_list("entry_sha256", flat=True))


@pytest.mark.django_db
def test_kept_nodes_give_the_same_root_and_paths_as_the_entries() -> None:
    append(1300)
    items = stored_leaves()
    assert ledger_tree.extend(1300) == 5 + 2 + 1  # 256-leaf blocks, then 512, then 1024
    assert ledger_tree.extend(1300) == 0  # nothing new: nothing to do
    tree = ledger_tree.Tree(1300)
    root = chain.tree_root(items)
    assert tree.root() == root
    for index in (0, 1, 255, 256, 700, 1023, 1024, 1279, 1280, 1299):
        path = tree.path(index)
        assert path == reference_path(items, index)
        assert chain.audit_path_root(items[index], index, 1300, path) == root
    # the tree of an earlier size (an older checkpoint) is the same arithmetic over fewer leaves
    assert ledger_tree.Tree(777).root() == chain.tree_root(items[:777])
    append(300)
    assert ledger_tree.extend(1600) == 1 + 1  # the sixth block and the third 512
    assert ledger_tree.root(1600) == chain.tree_root(stored_leaves())


@pytest.mark.django_db
def test_a_changed_kept_node_gives_paths_that_miss_the_signed_root() -> None:
    append(600)
    root = ledger_tree.root(600)
    LedgerNode.objects.filter(level=8, index=0).update(sha256="f" * 64)
    leaf = stored_leaves()[300]
    assert chain.audit_path_root(leaf, 300, 600, ledger_tree.Tree(600).path(300)) != root


@pytest.mark.django_db(transaction=True)
def test_checkpoints_sign_the_root_and_verify_custody_checks_it(archive_s3_settings: str) -> None:
    append(700)
    made = make_checkpoint(now=NOW)
    checkpoint = Checkpoint.objects.get()
    assert made.root == checkpoint.root_sha256 == chain.tree_root(stored_leaves()[: checkpoint.count])
    body = chain.parse_checkpoint(checkpoint.text)
    assert checkpoint.text.startswith("vicirec-checkpoint v2\n") and body.root == made.root
    report = verify_custody(now=NOW, record=False)
    assert report.ok, report.problems


@pytest.mark.django_db(transaction=True)
def test_checkpoints_of_the_first_version_keep_verifying(archive_s3_settings: str, settings) -> None:  # type: ignore[no-untyped-def]
    """Checkpoints signed before the tree existed name no root: they still verify (head and signature)."""
    from recordings.pipeline.checkpoints import _introduce, signing_key

    append(10)
    key, target = signing_key(), get_target()
    _introduce(key, target, NOW)
    count, head = ledger.head()
    text = chain.CheckpointBody(count, head, NOW.isoformat(timespec="seconds"), key.key_id).text()
    assert text.startswith("vicirec-checkpoint v1\n") and chain.parse_checkpoint(text).root == ""
    signature = key.sign(text.encode("ascii"))
    target.put_bytes(f"{PREFIX}old.txt", text.encode("ascii"), content_type="text/plain")
    target.put_bytes(f"{PREFIX}old.sig", signature, content_type="application/octet-stream")
    Checkpoint.objects.create(
        count=count, head_sha256=head, at=NOW, key_id=key.key_id, text=text, signature=signature.hex(),
        object_key=f"{PREFIX}old.txt",
    )  # fmt: skip
    append(5)
    make_checkpoint(now=NOW)
    report = verify_custody(now=NOW, record=False)
    assert report.ok and report.checkpoints == 2, report.problems


def test_a_checkpoint_text_is_parsed_strictly() -> None:
    body = chain.CheckpointBody(5, "a" * 64, "2026-11-20T12:00:00+00:00", "0123456789abcdef", "b" * 64)
    assert chain.parse_checkpoint(body.text()) == body
    for bad in (
        body.text().replace("root ", "rot "),
        body.text().replace("b" * 64, "B" * 64),
        body.text() + "extra\n",
        body.text().replace("count 5", "count five"),
    ):
        with pytest.raises(ValueError):
            chain.parse_checkpoint(bad)


def test_the_offline_verifier_walks_paths_the_same_way() -> None:
    """verify.py (stdlib only, shipped in evidence packages) carries its own copy of the path check."""
    import importlib.util

    source = Path(chain.__file__).with_name("offline_verify.py")
    spec = importlib.util.spec_from_file_location("offline_verify", source)
    assert spec and spec.loader
    offline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(offline)
    items = leaves(37)
    root = chain.tree_root(items)
    for index in range(37):
        path = reference_path(items, index)
        assert offline.path_root(items[index], index, 37, path) == root
        assert offline.path_root(items[index], (index + 3) % 37, 37, path) != root
