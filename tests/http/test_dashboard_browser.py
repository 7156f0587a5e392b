"""The dashboard in a real browser: headless Chromium renders it, shows the firing alert, and a screenshot is
taken (kept in the test's folder; docs/images/dashboard.png is one such screenshot)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import struct
import zlib
from pathlib import Path

from alertd.daemon import Daemon
from tests.http.test_api import served  # noqa: F401 - the fixture

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars"]


async def chromium(tmp_path: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert proc.returncode == 0
    return out.decode()


def png_colours(data: bytes) -> tuple[int, int, int]:
    """Width, height and how many distinct bytes the first rows hold (a blank page has one or two)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            chunks.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    return width, height, len(set(raw[: width * 4 * 200]))


async def test_chromium_renders_the_firing_alert_and_takes_a_screenshot(
    served: tuple[Daemon, str], tmp_path: Path  # noqa: F811
) -> None:
    _, url = served
    dom = await chromium(tmp_path, "--dump-dom", url + "/")
    assert "QueueDeep" in dom and "queue payments holds 50.0" in dom
    assert 'class="badge warning"' in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # a label value shown as text, never run
    shot = tmp_path / "dashboard.png"
    await chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", url + "/")
    width, height, colours = png_colours(shot.read_bytes())
    assert (width, height) == (1280, 900)
    assert colours > 20
