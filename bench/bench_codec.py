"""Benchmark recordings.lib.codec against the command-line tools VICIdial shops already use.

    .venv/bin/python bench/bench_codec.py [--files N] [--seconds S] [--kbps K] [--repeat R]

Synthesises N speech-like 8 kHz WAVs of S seconds in a temporary folder, then measures in this process:
  (a) hashing: our single-pass reader (hash only) against ``sha256sum`` over the same, page-cached files;
  (b) MP3: ``prepare(codec="mp3")`` (which also hashes the original and re-reads the output) against
      ``lame --quiet -m m -b K`` run once per file, as VICIdial's AST_CRON_audio_2_compress does;
  (c) size of each codec's output against the WAV.
Prints one JSON object on stdout and a short table on stderr. Needs no Django.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recordings.demo.speech import synthesize_speech_like_wav  # noqa: E402
from recordings.lib.codec import prepare  # noqa: E402
from recordings.lib.hashing import hash_file  # noqa: E402


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """Fastest wall time of ``repeat`` runs: the least disturbed by other load on the machine."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--kbps", type=int, default=24, help="MP3 bitrate for both encoders")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vicirec-bench-") as tmp:
        root = Path(tmp)
        spool, ours_dir, lame_dir, other_dir = (root / d for d in ("spool", "ours", "lame", "other"))
        for d in (spool, ours_dir, lame_dir, other_dir):
            d.mkdir()
        wavs = [spool / f"20250101-{i:06d}_5550000{i:03d}_1001-all.wav" for i in range(args.files)]

        start = time.perf_counter()
        for i, wav in enumerate(wavs):
            synthesize_speech_like_wav(wav, seconds=args.seconds, seed=i)
        synth_s = time.perf_counter() - start

        wav_bytes = sum(w.stat().st_size for w in wavs)
        audio_s = args.files * args.seconds
        mb = wav_bytes / 1e6

        # (a) hashing, on page-cached files for both sides
        ours_digests = [hash_file(w)[0] for w in wavs]
        cli = subprocess.run(["sha256sum", *map(str, wavs)], capture_output=True, text=True, check=True)
        assert ours_digests == [line.split()[0] for line in cli.stdout.splitlines()], "hash mismatch"
        ours_hash_s = best_of(args.repeat, lambda: [hash_file(w) for w in wavs])
        cli_hash_s = best_of(
            args.repeat, lambda: subprocess.run(["sha256sum", *map(str, wavs)], capture_output=True, check=True)
        )

        # (b) MP3 encoding
        def encode_ours() -> None:
            for w in wavs:
                prepare(w, codec="mp3", workdir=ours_dir, mp3_bitrate_kbps=args.kbps).output_path.unlink()

        def encode_lame() -> None:
            for w in wavs:
                subprocess.run(
                    ["lame", "--quiet", "-m", "m", "-b", str(args.kbps), str(w), str(lame_dir / f"{w.stem}.mp3")],
                    check=True,
                )

        ours_mp3_s = best_of(args.repeat, encode_ours)
        lame_mp3_s = best_of(args.repeat, encode_lame)

        # (c) sizes (one more pass each; opus and flac are timed once)
        sizes: dict[str, int] = {"wav": wav_bytes}
        times: dict[str, float] = {}
        for codec in ("mp3", "opus", "flac"):
            start = time.perf_counter()
            outputs = [prepare(w, codec=codec, workdir=other_dir, mp3_bitrate_kbps=args.kbps) for w in wavs]
            times[codec] = time.perf_counter() - start
            sizes[codec] = sum(p.output_size for p in outputs)
            for p in outputs:
                p.output_path.unlink()
        sizes["lame_mp3"] = sum(p.stat().st_size for p in lame_dir.iterdir())

    report: dict[str, Any] = {
        "corpus": {
            "files": args.files,
            "seconds_each": args.seconds,
            "wav_mb": round(mb, 2),
            "synthesis_s": round(synth_s, 3),
            "synthesis_realtime_x": round(audio_s / synth_s, 1),
        },
        "hash": {
            "ours_mb_s": round(mb / ours_hash_s, 1),
            "sha256sum_mb_s": round(mb / cli_hash_s, 1),
            "ratio": round(cli_hash_s / ours_hash_s, 3),
        },
        "mp3": {
            "kbps": args.kbps,
            "ours_files_s": round(args.files / ours_mp3_s, 2),
            "lame_files_s": round(args.files / lame_mp3_s, 2),
            "ours_realtime_x": round(audio_s / ours_mp3_s, 1),
            "lame_realtime_x": round(audio_s / lame_mp3_s, 1),
            "ratio": round(lame_mp3_s / ours_mp3_s, 3),
        },
        "size_vs_wav": {k: round(v / wav_bytes, 4) for k, v in sizes.items() if k != "wav"},
        "other_codecs_realtime_x": {c: round(audio_s / times[c], 1) for c in ("opus", "flac")},
        "python": sys.version.split()[0],
    }
    print(json.dumps(report, indent=2))

    h, m, s = report["hash"], report["mp3"], report["size_vs_wav"]
    rows = [
        ("hash MB/s", f"{h['ours_mb_s']}", f"{h['sha256sum_mb_s']} (sha256sum)", f"{h['ratio']}x"),
        ("mp3 files/s", f"{m['ours_files_s']}", f"{m['lame_files_s']} (lame)", f"{m['ratio']}x"),
        ("mp3 x realtime", f"{m['ours_realtime_x']}", f"{m['lame_realtime_x']} (lame)", ""),
        ("mp3 size / wav", f"{s['mp3']:.3f}", f"{s['lame_mp3']:.3f} (lame)", ""),
        ("opus size / wav", f"{s['opus']:.3f}", "", ""),
        ("flac size / wav", f"{s['flac']:.3f}", "", ""),
    ]
    print(f"\n{'measure':<16}{'ours':>10}  {'reference':<22}{'ours/ref':>9}", file=sys.stderr)
    for name, ours, ref, ratio in rows:
        print(f"{name:<16}{ours:>10}  {ref:<22}{ratio:>9}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
