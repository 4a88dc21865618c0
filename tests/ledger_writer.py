"""A separate process that appends to the custody ledger as fast as it can (the concurrency test).

    python -m tests.ledger_writer RECORDING_ID ROUNDS

Each round is one transaction of the shape the pipeline makes: a custody note on its own recording, then
an access event. Run two at once against one database: the chain must stay one valid chain.
"""

from __future__ import annotations

import sys


def main(recording_id: int, rounds: int) -> None:
    import django

    django.setup()
    from recordings import custody
    from recordings.export import log_access
    from recordings.models import Recording
    from vicirec import clock
    from vicirec.actors import Actor

    custody.catalog(
        [Recording(recording_id=recording_id, filename=f"w{recording_id}")],
        actor="writer",
        now=clock.now(),
        detail=lambda r: "cataloged",
    )
    recording = Recording.objects.get(pk=recording_id)
    for i in range(rounds):
        custody.note(recording, actor="writer", detail=f"round {i}", now=clock.now())
        log_access([recording_id], action="play", who=Actor.command(f"writer-{recording_id}"))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
