"""Chromium (Debian's headless build, the desk's reference browser) reads the Ogg/Opus vicirec writes, with
and without discontinuous transmission: Web Audio decodes it to exactly the recording's length (the last
page's granule position trims the padding, the pre-skip the encoder's delay), the speech after a pause lands
where it was, and an <audio> element plays it to the end with a finite duration."""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.admin.test_browser import browser as browser  # the fixture
from tests.recordings.test_opus import call_with_a_pause, packets, write

pytest.importorskip("selenium.webdriver")

DECODE_AND_PLAY = """
const done = arguments[arguments.length - 1];
const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
new OfflineAudioContext(1, 1, 8000).decodeAudioData(bytes.buffer.slice(0)).then(buffer => {
  const audio = new Audio(URL.createObjectURL(new Blob([bytes], {type: 'audio/ogg; codecs=opus'})));
  audio.muted = true;
  audio.onerror = () => done({error: 'media error ' + (audio.error && audio.error.code)});
  audio.onended = () => done({
    rate: buffer.sampleRate, samples: Array.from(buffer.getChannelData(0)),
    duration: audio.duration, ended_at: audio.currentTime,
  });
  audio.onloadedmetadata = () => { audio.playbackRate = 8; };
  audio.play().catch(e => done({error: String(e)}));
}, e => done({error: 'decodeAudioData: ' + e}));
"""


@pytest.mark.parametrize("dtx", [False, True], ids=["plain", "dtx"])
def test_chromium_decodes_and_plays_our_ogg_opus_at_the_exact_length(browser: Any, tmp_path: Path, dtx: bool) -> None:
    pcm, pause, after = call_with_a_pause()
    data = write(tmp_path / "call.opus", pcm, dtx=dtx)
    assert any(len(p) == 1 for p in packets(data)[2:]) is dtx  # the DTX stream has TOC-only packets

    browser.get("about:blank")
    browser.set_script_timeout(30)
    result = browser.execute_async_script(DECODE_AND_PLAY, base64.b64encode(data).decode("ascii"))

    assert "error" not in result, result
    decoded = np.array(result["samples"])
    assert (result["rate"], len(decoded)) == (8000, len(pcm))
    # the element's duration is the last granule position over 48 kHz: Chromium does not subtract the 6.5 ms of
    # pre-skip there (its decoder does, above)
    pre_skip = struct.unpack("<H", packets(data)[0][10:12])[0]
    assert result["duration"] == pytest.approx((len(pcm) * 6 + pre_skip) / 48000, abs=0.001)
    assert result["ended_at"] == pytest.approx(result["duration"], abs=0.05)
    original = pcm[:, 0] / 32768
    assert np.corrcoef(original[after], decoded[after])[0, 1] > 0.7  # not shifted by the pause
    assert np.sqrt(np.mean(decoded[pause] ** 2)) < 4 * np.sqrt(np.mean(original[pause] ** 2))
