"""The HTML leaderboard from real runs (engine + packaged fake model): escaping, CSP, and a headless browser.

The browser test drives Debian's ``chromium`` (installed by .ci/run) and is skipped, saying so,
when no chromium binary is on PATH.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from report_runs import snapshot_runs

from optimizer import build_leaderboard, optimize
from optimizer.models.providers.fake import FakeModel, last_input, register_fake
from optimizer.report.html import SCRIPT, render_html
from optimizer.tasks.task import Task
from optimizer.types import Example

REPO = Path(__file__).resolve().parents[1]
SCRIPT_PAYLOAD = 'Write the input in capital letters <script>document.title="pwned"</script>'
IMG_PAYLOAD = ("Write the input in capital letters <img src=x "
               "onerror=\"document.body.setAttribute('data-pwned','1')\">")
WORDS = ["apple", "river", "stone", "cloud", "tiger", "lemon", "piano", "house", "grape", "mouse", "chair", "bread",
         "plant", "water", "light", "sugar", "horse", "table", "night", "green", "sound", "paper", "smile", "train",
         "beach", "heart", "brain", "glass", "money", "dream", "ocean", "storm", "field", "candy", "spoon", "clock"]


def _upper_task() -> Task:
    ex = [Example(input=w, output=w.upper(), id=str(i)) for i, w in enumerate(WORDS)]
    return Task(name="shout <b>&amp;</b>", train=ex[:12], dev=ex[12:24], test=ex[24:], metric="exact_match",
                instructions=["Repeat the word."], shots=1)


@pytest.fixture
def hostile_runs(tmp_path) -> Path:
    """Two seeds of a job whose proposer writes HTML/JS into its instructions."""
    register_fake("hostile", lambda: FakeModel(
        "fake:hostile", proposals=[SCRIPT_PAYLOAD, IMG_PAYLOAD, "Repeat the input.", "Say nothing."],
        answer=lambda p: last_input(p).upper() if "capital letters" in p.split("Input:")[0] else last_input(p)))
    root = tmp_path / "runs"
    for seed in (0, 1):
        optimize(_upper_task(), target="fake:hostile", seed=seed, searcher="ape", candidates=6, rounds=1, runs_dir=root)
    return root


def test_html_escapes_every_run_text_and_pins_its_script(hostile_runs):
    board = build_leaderboard(hostile_runs)
    assert board.rows[0].best.best_text in (SCRIPT_PAYLOAD, IMG_PAYLOAD)
    page = render_html(board)
    assert "<script>document.title" not in page and "<img src=x" not in page and "<b>&amp;</b>" not in page
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=" in page and "shout &lt;b&gt;&amp;amp;&lt;/b&gt;" in page
    # one script element only: the page's own, allowed by its hash and nothing else
    assert page.count("<script") == 1
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must load nothing from the network"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browser(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    exe = _chromium()
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def _png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG (what chromium writes) into rows of pixel bytes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[i:i + 3]) for r in rows for i in range(0, stride, bpp)]


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary on PATH (Debian: apt-get install chromium; "
                                                  ".ci/run installs it)")
def test_browser_renders_table_and_plots_and_runs_no_injected_code(hostile_runs, tmp_path):
    snapshot_runs(hostile_runs)  # more rows (written directly) so that sorting has something to reorder
    page = tmp_path / "leaderboard.html"
    out = subprocess.run([sys.executable, "-m", "optimizer", "leaderboard", str(hostile_runs), "--format", "html",
                          "--out", str(page)], capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    rows = build_leaderboard(hostile_runs).rows
    accs = [r.best.test.acc if r.best.test else None for r in rows]
    # test accuracy ascending, rows without one last, ties in the documented order
    expected = sorted(range(len(rows)), key=lambda i: (accs[i] is None, accs[i] or 0.0, i))
    assert expected != list(range(len(rows)))

    # the DOM after the page's script ran, sorted by test accuracy (column 3) through the URL
    dump = _browser(["--dump-dom", page.as_uri() + "#sort=3-asc"], tmp_path)
    dom = dump.stdout
    assert 'data-ready="1"' in dom, f"the page's script did not run:\n{dump.stderr[-2000:]}"
    assert 'data-sorted="3-asc"' in dom and 'aria-sort="ascending"' in dom
    body = dom[dom.index("<tbody>"):dom.index("</tbody>")]
    assert [int(i) for i in re.findall(r'<tr [^>]*data-rank="(\d+)"', body)] == expected
    for plot in ("plot distribution", "plot trajectory", "plot lineage"):
        assert f'class="{plot}"' in dom, plot
    assert dom.count('class="cand"') >= 6 and "<polyline" in dom and 'class="node"' in dom
    # the payloads are there as text and did nothing
    assert "&lt;script&gt;document.title=\"pwned\"&lt;/script&gt;" in dom
    assert "&lt;img src=x onerror=" in dom
    assert "<title>apo leaderboard</title>" in dom and "pwned</title>" not in dom
    assert "<img" not in dom and "<script>document.title" not in dom
    assert not re.search(r"<body[^>]*data-pwned", dom)

    shot = tmp_path / "shot.png"
    result = _browser([f"--screenshot={shot}", "--window-size=1200,1400", page.as_uri()], tmp_path)
    assert shot.exists(), result.stderr[-2000:]
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (1200, 1400)
    white = sum(1 for p in pixels if p == b"\xff\xff\xff")
    assert len(set(pixels)) > 50, "screenshot has almost no colours: nothing rendered"
    assert 0.02 < 1 - white / len(pixels) < 0.9, "screenshot is blank (or solid)"
