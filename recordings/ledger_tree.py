"""The Merkle tree over the custody ledger's entries: a root for each checkpoint, and for any entry a path of
log2(n) hashes to a signed root (docs/custody-ledger.md).

Leaf ``i`` is the ``entry_sha256`` of entry ``seq = i + 1``; the arithmetic is ``recordings.lib.ledger``'s.
The roots of complete, aligned subtrees of ``BLOCK`` leaves or more are kept in ``LedgerNode`` so a root or a
path costs a few indexed reads instead of a walk of the ledger. The nodes are a cache derived from the
entries, never trusted on their own: a path built from a wrong node does not lead to the signed root, and
the evidence export checks every path against the root it was signed with before writing it.
"""

from __future__ import annotations

from django.db.models import Max

from recordings.lib import ledger as chain
from recordings.models import LedgerEntry, LedgerNode

BLOCK_LEVEL = 8
BLOCK = 1 << BLOCK_LEVEL  # leaves under the smallest kept node
GROUP_LEVEL = 12  # nodes below this level are read a 4,096-leaf group at a time
PAGE_BLOCKS = 64  # level-BLOCK_LEVEL nodes built from one read of leaves


def _leaves(start: int, end: int) -> list[str]:
    """The entry hashes of leaves start … end - 1 (entries start + 1 … end)."""
    rows = LedgerEntry.objects.filter(seq__gt=start, seq__lte=end).order_by("seq")
    leaves = list(rows.values_list("entry_sha256", flat=True))
    if len(leaves) != end - start:
        raise LookupError(f"the ledger is missing entries between {start + 1} and {end}")
    return leaves


def extend(count: int) -> int:
    """Keep the nodes of every complete aligned subtree of the first ``count`` leaves; returns how many were
    added. Costs what was appended since the last call (the daily checkpoint calls it)."""
    added, level = 0, BLOCK_LEVEL
    while (1 << level) <= count:
        width = 1 << level
        have = LedgerNode.objects.filter(level=level).aggregate(last=Max("index"))["last"]
        next_index = 0 if have is None else have + 1
        while (next_index + 1) * width <= count:
            upto = min(count // width, next_index + PAGE_BLOCKS)
            if level == BLOCK_LEVEL:
                leaves = _leaves(next_index * BLOCK, upto * BLOCK)
                hashes = [chain.tree_root(leaves[i : i + BLOCK]) for i in range(0, len(leaves), BLOCK)]
            else:
                below = dict(
                    LedgerNode.objects.filter(
                        level=level - 1, index__gte=2 * next_index, index__lt=2 * upto
                    ).values_list("index", "sha256")
                )
                hashes = [chain.node(below[2 * i], below[2 * i + 1]) for i in range(next_index, upto)]
            LedgerNode.objects.bulk_create(
                [LedgerNode(level=level, index=next_index + i, sha256=h) for i, h in enumerate(hashes)],
                ignore_conflicts=True,
            )
            added += len(hashes)
            next_index = upto
        level += 1
    return added


class Tree:
    """Roots and paths over the first ``size`` leaves, reading kept nodes and leaves as it needs them
    (memoised, so the paths of many entries share their reads)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.nodes: dict[tuple[int, int], str] = {}
        self.blocks: dict[int, list[str]] = {}
        self.groups: set[int] = set()
        self.memo: dict[tuple[int, int], str] = {}

    def _block(self, block: int) -> list[str]:
        if block not in self.blocks:
            self.blocks[block] = _leaves(block * BLOCK, min((block + 1) * BLOCK, self.size))
        return self.blocks[block]

    def _node(self, level: int, index: int) -> str | None:
        if (level, index) not in self.nodes:
            if level < GROUP_LEVEL:
                group = (index << level) >> GROUP_LEVEL
                if group not in self.groups:
                    self.groups.add(group)
                    first, last = group << GROUP_LEVEL, (group + 1) << GROUP_LEVEL
                    for lvl in range(BLOCK_LEVEL, GROUP_LEVEL):
                        rows = LedgerNode.objects.filter(
                            level=lvl, index__gte=first >> lvl, index__lt=last >> lvl
                        ).values_list("index", "sha256")
                        self.nodes.update(((lvl, i), h) for i, h in rows)
            else:
                found = LedgerNode.objects.filter(level=level, index=index).values_list("sha256", flat=True).first()
                if found:
                    self.nodes[(level, index)] = found
        return self.nodes.get((level, index))

    def hash(self, start: int, size: int) -> str:
        """The root of the subtree over leaves start … start + size - 1 (the shape RFC 9162 gives it)."""
        key = (start, size)
        if key not in self.memo:
            level = size.bit_length() - 1
            aligned = size == 1 << level and start % size == 0
            kept = self._node(level, start >> level) if aligned and level >= BLOCK_LEVEL else None
            if kept is None and start // BLOCK == (start + size - 1) // BLOCK:
                offset = start % BLOCK
                kept = chain.tree_root(self._block(start // BLOCK)[offset : offset + size])
            if kept is None:
                k = chain.split(size)
                kept = chain.node(self.hash(start, k), self.hash(start + k, size - k))
            self.memo[key] = kept
        return self.memo[key]

    def root(self) -> str:
        return self.hash(0, self.size) if self.size else chain.EMPTY_ROOT

    def path(self, index: int) -> list[tuple[str, str]]:
        """The inclusion path of leaf ``index``: (side, sibling hash) pairs from the leaf up to the root."""
        path: list[tuple[str, str]] = []
        start, size = 0, self.size
        while size > 1:
            k = chain.split(size)
            if index < start + k:
                path.append(("R", self.hash(start + k, size - k)))
                size = k
            else:
                path.append(("L", self.hash(start, k)))
                start, size = start + k, size - k
        path.reverse()
        return path


def root(count: int) -> str:
    """The Merkle root of the first ``count`` entries, with their kept nodes brought up to date first."""
    extend(count)
    return Tree(count).root()
