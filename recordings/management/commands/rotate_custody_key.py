from typing import Any

from recordings.pipeline.checkpoints import make_checkpoint, rotate_key
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = (
        "Retire the key that signs custody checkpoints (kept beside it as <file>.<key id>.retired), make a "
        "new one and sign a checkpoint with it. Older checkpoints stay verifiable."
    )

    def run(self, **options: Any) -> Any:
        make_checkpoint(now=clock.now())  # the old key's last word covers everything up to the rotation
        old, new = rotate_key()
        report = make_checkpoint(now=clock.now())
        return {"retired_key": old, "new_key": new, "checkpoint": report.object_key}
