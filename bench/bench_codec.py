"""Which codec stores a call in the fewest bytes that are still as intelligible as VICIdial's own MP3?

    .venv/bin/python bench/bench_codec.py [--copies N] [--repeat R] [--json]

Corpus: one realistic call (bench/callaudio.py: two espeak-ng voices taking turns on an 8 kHz telephone
line with hiss and hum; without espeak-ng or sox, the demo's synthetic speech, and the JSON says so).
For every candidate, in this process, on the same WAV:

  bytes per recorded hour   the encoded file's size scaled to an hour;
  STOI                      short-time objective intelligibility (pystoi) of the decoded audio against the
                            WAV that was encoded (1.0 = identical), after aligning away encoder delay, over
                            the whole file: the figure the default is chosen by;
  STOI of the speech        the same over the speech alone (20 ms frames 12 dB above the file's noise floor,
                            widened by 100 ms), and the level of the rest, the pauses, against the original:
                            where a codec loses (hiss coded, attenuated, or replaced by comfort noise);
  x realtime per core       seconds of audio per CPU second of the encoding thread (the hash included for
                            recordings.lib.codec, which always hashes the original in the same pass).

Candidates: VICIdial's own compression run as its cron runs it (``lame -b 16 -m m``; ``sox`` to GSM 6.10),
vicirec's MP3 (lameenc) at 16 and 24 kbps, vicirec's Opus (libopus, speech mode) at 8/10/11/12/14/16 kbps
and at 10/11/12 kbps with discontinuous transmission (DTX: the pauses as one-byte packets), the Ogg/Opus of
libsndfile (the path vicirec used before) and FLAC. A candidate whose command is not installed is skipped
with the reason. Then the same N copies of the call are encoded by 1 thread and by 2 threads
(wall time, both in this process) to show which encoder uses a second core; and the SHA-256 reader is timed
against ``sha256sum``. Prints one JSON object on stdout and the table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import callaudio  # noqa: E402

from recordings.demo.speech import synthesize_speech_like_wav  # noqa: E402
from recordings.lib import opus  # noqa: E402
from recordings.lib.codec import prepare  # noqa: E402
from recordings.lib.hashing import hash_file  # noqa: E402

VICIDIAL = "VICIdial MP3 16k (lame -b 16 -m m)"
DEFAULT = f"vicirec Opus {opus.DEFAULT_KBPS}k (libopus voip, default)"


def aligned(reference: np.ndarray, decoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``reference`` and ``decoded`` cut to the same length after removing the decoder's delay (±0.25 s
    searched on the first ten seconds of speech)."""
    n = min(len(reference), len(decoded))
    window = slice(callaudio.RATE, min(n, 11 * callaudio.RATE))
    best, lag = -np.inf, 0
    for shift in range(-2000, 2001):
        a, b = window.start, window.stop
        if a + shift < 0 or b + shift > len(decoded):
            continue
        score = float(np.dot(reference[a:b], decoded[a + shift : b + shift]))
        if score > best:
            best, lag = score, shift
    moved = decoded[lag:] if lag >= 0 else np.concatenate((np.zeros(-lag), decoded))
    n = min(len(reference), len(moved))
    return reference[:n], moved[:n]


def speech_mask(reference: np.ndarray) -> np.ndarray:
    """The samples of ``reference`` near speech: 20 ms frames at least 12 dB above the file's noise floor
    (its 10th-percentile frame), widened by 100 ms on each side. The rest is the pauses: line noise alone."""
    frame = callaudio.RATE // 50
    frames = len(reference) // frame + 1
    padded = np.concatenate((reference, np.zeros(frames * frame - len(reference))))
    level = 10 * np.log10(np.mean(padded.reshape(frames, frame) ** 2, axis=1) + 1e-20)
    loud = level >= np.percentile(level, 10) + 12
    wide = np.convolve(loud, np.ones(11), mode="same") > 0  # ±5 frames
    return np.repeat(wide, frame)[: len(reference)]


def scores(reference: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    """STOI over the whole file (the rule's figure); and, to show where a codec loses, STOI of the speech
    alone and the level of the pauses against the original's (comfort noise, attenuated hiss)."""
    from pystoi import stoi

    ref, out = aligned(reference, decoded)
    speech = speech_mask(ref)
    pause_db = 10 * np.log10(np.mean(out[~speech] ** 2) / np.mean(ref[~speech] ** 2))
    return {
        "stoi": round(float(stoi(ref, out, callaudio.RATE, extended=False)), 3),
        "stoi_speech": round(float(stoi(ref[speech], out[speech], callaudio.RATE, extended=False)), 3),
        "pause_level_db": round(float(pause_db), 1),
    }


def decode(path: Path, tmp: Path) -> np.ndarray:
    """Decoded audio, float64 at 8 kHz mono (GSM through sox, the rest through libsndfile)."""
    if path.suffix == ".gsm":
        wav = tmp / "gsm-decoded.wav"
        subprocess.run(["sox", "-t", "gsm", "-r", "8000", "-c", "1", str(path), "-b", "16", str(wav)], check=True)
        path = wav
    audio, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    assert rate == callaudio.RATE, f"{path.name} decodes at {rate} Hz"
    return audio[:, 0]


def cpu_of(run: Callable[[], Path], repeat: int) -> tuple[float, Path]:
    """Least CPU seconds (this thread plus child processes) of ``repeat`` runs, and the last output."""
    best, out = float("inf"), None
    for _ in range(repeat):
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.thread_time()
        out = run()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        spent = time.thread_time() - start + (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
        best = min(best, spent)
    assert out is not None
    return best, out


def candidates(wav: Path, out: Path) -> dict[str, Callable[[], Path] | str]:
    """Name -> a function that encodes ``wav`` and returns the output file, or why it is skipped."""

    def ours(codec: str, **kw: int | bool) -> Callable[[], Path]:
        return lambda: prepare(wav, codec=codec, workdir=out, **kw).output_path

    def command(name: str, suffix: str, argv: list[str]) -> Callable[[], Path] | str:
        if shutil.which(argv[0]) is None:
            return f"`{argv[0]}` is not installed (apt-get install {argv[0]})"
        target = out / f"{name}.{suffix}"
        return lambda: subprocess.run([*argv, str(target)], check=True) and target

    def libsndfile_opus() -> Path:  # the Ogg/Opus vicirec wrote before: libsndfile, ~11 kbps, general audio
        audio, rate = soundfile.read(str(wav), dtype="int16")
        target = out / "libsndfile.opus"
        soundfile.write(str(target), audio, rate, format="OGG", subtype="OPUS", compression_level=0.98)
        return target

    return {
        VICIDIAL: command("lame16", "mp3", ["lame", "--quiet", "-b", "16", "-m", "m", str(wav)]),
        "VICIdial GSM 6.10 (sox)": command("gsm", "gsm", ["sox", str(wav), "-t", "gsm"]),
        "vicirec MP3 16k (lameenc)": ours("mp3", mp3_bitrate_kbps=16),
        "vicirec MP3 24k (lameenc, old default)": ours("mp3", mp3_bitrate_kbps=24),
        "vicirec Opus 8k (libopus voip)": ours("opus", opus_bitrate_kbps=8),
        "vicirec Opus 10k (libopus voip)": ours("opus", opus_bitrate_kbps=10),
        "vicirec Opus 11k (libopus voip)": ours("opus", opus_bitrate_kbps=11),
        DEFAULT: ours("opus"),
        "vicirec Opus 14k (libopus voip)": ours("opus", opus_bitrate_kbps=14),
        "vicirec Opus 16k (libopus voip)": ours("opus", opus_bitrate_kbps=16),
        "vicirec Opus 10k + DTX": ours("opus", opus_bitrate_kbps=10, opus_dtx=True),
        "vicirec Opus 11k + DTX": ours("opus", opus_bitrate_kbps=11, opus_dtx=True),
        "vicirec Opus 12k + DTX": ours("opus", opus_bitrate_kbps=12, opus_dtx=True),
        "libsndfile Ogg/Opus ~11k (old path)": libsndfile_opus,
        "vicirec FLAC (lossless)": ours("flac"),
    }


def codec_table(wav: Path, seconds: float, tmp: Path, repeat: int) -> dict[str, Any]:
    reference, _ = soundfile.read(str(wav), dtype="float64")
    rows: dict[str, Any] = {}
    for name, run in candidates(wav, tmp).items():
        if isinstance(run, str):
            rows[name] = {"skipped": run}
            print(f"  {name}: skipped: {run}", file=sys.stderr)
            continue
        cpu, output = cpu_of(run, repeat)
        rows[name] = {
            "mb_per_hour": round(output.stat().st_size * 3600 / seconds / 1e6, 2),
            **scores(reference, decode(output, tmp)),
            "realtime_x_per_core": round(seconds / cpu, 1),
        }
        print(f"  {name}: {rows[name]}", file=sys.stderr, flush=True)
    return rows


def verdict(rows: dict[str, Any]) -> dict[str, Any]:
    """The default by the rule: fewest bytes per hour at a STOI (whole file) no worse than VICIdial's MP3.
    The same pick by the STOI of the speech alone is shown beside it; it is not the rule."""
    ref = rows.get(VICIDIAL) or rows["vicirec MP3 16k (lameenc)"]
    scored = {k: v for k, v in rows.items() if "stoi" in v and k != VICIDIAL}
    fits = {k: v for k, v in scored.items() if v["stoi"] >= ref["stoi"]}
    fits_speech = {k: v for k, v in scored.items() if v["stoi_speech"] >= ref["stoi_speech"]}
    best = min(fits, key=lambda k: fits[k]["mb_per_hour"])
    default = rows[DEFAULT]
    ratio = default["mb_per_hour"] / ref["mb_per_hour"]
    return {
        "reference": VICIDIAL if VICIDIAL in rows and "stoi" in rows[VICIDIAL] else "vicirec MP3 16k (lameenc)",
        "smallest_at_reference_stoi": best,
        "ratio_smallest_vs_vicidial_mp3": round(fits[best]["mb_per_hour"] / ref["mb_per_hour"], 3),
        "ratio_default_bytes_vs_vicidial_mp3": round(ratio, 3),
        "goal_met_bytes": ratio <= 0.6 and default["stoi"] >= ref["stoi"],
        "goal_met_speed": default["realtime_x_per_core"] >= 300,
        "not_the_rule_smallest_at_reference_speech_stoi": min(fits_speech, key=lambda k: fits_speech[k]["mb_per_hour"]),
    }


def threads_scaling(wavs: list[Path], tmp: Path) -> dict[str, Any]:
    """Wall time of the same files through 1 and 2 threads; > 1.6x means the encoder left the GIL."""
    result: dict[str, Any] = {"files": len(wavs), "cpus": os.cpu_count()}
    for codec in ("opus", "mp3"):
        walls = []
        for threads in (1, 2):

            def one(w: Path, codec: str = codec) -> None:
                prepare(w, codec=codec, workdir=tmp / "threads").output_path.unlink()

            start = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(one, wavs))
            walls.append(time.perf_counter() - start)
        result[codec] = {"one_thread_s": round(walls[0], 3), "two_threads_s": round(walls[1], 3)}
        result[f"ratio_{codec}_two_vs_one_thread"] = round(walls[0] / walls[1], 2)
    return result


def hashing(wavs: list[Path], repeat: int) -> dict[str, Any]:
    mb = sum(w.stat().st_size for w in wavs) / 1e6
    ours = min(_wall(lambda: [hash_file(w) for w in wavs]) for _ in range(repeat))
    cli = min(_wall(lambda: subprocess.run(["sha256sum", *map(str, wavs)], capture_output=True)) for _ in range(repeat))
    return {"ours_mb_s": round(mb / ours, 1), "sha256sum_mb_s": round(mb / cli, 1), "ratio": round(cli / ours, 3)}


def _wall(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def print_table(report: dict[str, Any]) -> None:
    print(f"\ncorpus: {report['corpus']['kind']}, {report['corpus']['seconds']} s", file=sys.stderr)
    head = f"{'candidate':<44}{'MB/hour':>9}{'STOI':>7}{'speech':>8}{'pauses dB':>10}{'x realtime/core':>17}"
    print(head, file=sys.stderr)
    for name, row in report["codecs"].items():
        if "skipped" in row:
            print(f"{name:<44}  skipped: {row['skipped']}", file=sys.stderr)
        else:
            mbh, stoi_, rt = row["mb_per_hour"], row["stoi"], row["realtime_x_per_core"]
            speech, pauses = row["stoi_speech"], row["pause_level_db"]
            print(f"{name:<44}{mbh:>9.2f}{stoi_:>7.3f}{speech:>8.3f}{pauses:>+10.1f}{rt:>17.1f}", file=sys.stderr)
    print(json.dumps(report["verdict"]), file=sys.stderr)
    print(json.dumps(report["threads"]), file=sys.stderr)
    print(f"hash: {json.dumps(report['hash'])}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=8, help="copies of the call for the 1-vs-2-thread run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the least CPU counts")
    parser.add_argument("--hiss-dbfs", type=float, default=-54.0, help="line noise: -54 fair, -44 bad")
    parser.add_argument("--json", action="store_true", help="print the JSON compact, on one line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vicirec-bench-codec-") as tmp_name:
        tmp = Path(tmp_name)
        wav = tmp / "20250101-000000_5550000000_1001-all.wav"
        missing = callaudio.missing_tools()
        if missing:
            kind = f"synthetic speech (recordings.demo.speech): {', '.join(missing)} not installed"
            synthesize_speech_like_wav(wav, seconds=60.0, seed=1)
            seconds = 60.0
        else:
            kind = f"two espeak-ng voices on an 8 kHz line, hiss at {args.hiss_dbfs} dBFS (bench/callaudio.py)"
            seconds = callaudio.make_call(wav, hiss_dbfs=args.hiss_dbfs)
        copies = [tmp / f"copy{i}.wav" for i in range(args.copies)]
        for copy in copies:
            shutil.copyfile(wav, copy)
        rows = codec_table(wav, seconds, tmp, args.repeat)
        report = {
            "corpus": {"kind": kind, "seconds": round(seconds, 2)},
            "codecs": rows,
            "verdict": verdict(rows),
            "threads": threads_scaling(copies, tmp),
            "hash": hashing(copies, args.repeat),
            "python": sys.version.split()[0],
        }
    print(json.dumps(report, separators=(",", ":")) if args.json else json.dumps(report, indent=2))
    print_table(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
