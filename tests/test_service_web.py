"""The web view of apo serve (/ui): a real server on 127.0.0.1, a slow fake job, and headless Chromium on its pages.

The browser test drives Debian's ``chromium`` and is skipped, saying so, when no chromium binary is on PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from service_helpers import REPO, Server, wait_for
from test_report_html import _chromium, _png_pixels

from optimizer import ApoClient, load_task

pytestmark = pytest.mark.slow

SITE = """
from optimizer.models.providers.fake import FakeModel, last_input, register_fake

def _upper(name, delay):
    return FakeModel(name, proposals=["Repeat the input.", "Write the input in capital letters.", "Say nothing."],
                     answer=lambda p: last_input(p).upper() if "capital letters" in p.lower() else last_input(p),
                     delay=delay)

register_fake("slower", lambda: _upper("fake:slower", 0.05))
"""
"""A ``sitecustomize`` on the server's PYTHONPATH: its worker processes get one more fake, slow enough (about
half a minute a job) for a browser to see the progress advance."""

HOSTILE = "<img src=x onerror=\"document.title='pwned'\">Capitalize <b>every</b> word & keep the rest."


@pytest.fixture
def server(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITE)
    srv = Server(tmp_path, env={"PYTHONPATH": f"{site}{os.pathsep}{REPO}"})
    try:
        yield srv
    finally:
        srv.stop()


def test_pages_are_served_without_the_token_but_hold_no_data(server):
    with server.http(token=None) as anonymous:
        for path in ("/ui", "/ui/jobs/anything", "/ui/leaderboard"):
            page = anonymous.get(path)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
            assert "default-src 'none'" in page.headers["content-security-policy"]
            assert "connect-src 'self'" in page.headers["content-security-policy"]
            assert '<script src="/ui/static/app.js">' in page.text
        script = anonymous.get("/ui/static/app.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert "innerHTML" not in script.text and "insertAdjacentHTML" not in script.text
        assert "EventSource" not in script.text and "getReader" in script.text  # fetch, to send the token
        assert anonymous.get("/ui/static/app.css").status_code == 200
        for path in ("/ui/static/index.html", "/ui/static/..%2Fapp.py", "/ui/static/web.py"):
            assert anonymous.get(path).status_code == 404, path
        assert anonymous.get("/jobs").status_code == 401  # the data stays behind the token
    for name in ("index.html", "app.js", "app.css"):
        text = (REPO / "optimizer" / "service" / "static" / name).read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), f"{name} must load nothing from elsewhere"


def _browser(args: list[str], tmp_path: Path) -> str:
    exe = _chromium()
    assert exe is not None
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=4000", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    return done.stdout


def _attr(dom: str, name: str) -> str:
    found = re.search(rf'<body[^>]*\b{name}="([^"]*)"', dom)
    assert found, f"the page's script did not set {name}:\n{dom[:3000]}"
    return found.group(1)


def _row_scores(dom: str, job_id: str) -> int:
    row = re.search(rf'<tr data-job="{job_id}".*?</tr>', dom)
    assert row, f"job {job_id} is not listed:\n{dom[:3000]}"
    return int(re.search(r'data-scores="(\d+)"', row.group(0)).group(1))  # type: ignore[union-attr]


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary on PATH (Debian: apt-get install chromium; "
                                                  ".ci/run installs it)")
def test_browser_follows_a_job_live_and_shows_its_result_and_the_leaderboard(server, tmp_path):
    client = ApoClient(server.url, server.token)
    task = load_task("capitalize_words").model_copy(update={"name": "caps_web", "instructions": [HOSTILE]})
    job_id = client.submit(task, target="fake:slower", searcher="ape", rounds=1, dev_limit=20, cache=False)
    wait_for(lambda: client.get(job_id)["progress"]["scores"] > 0, 90, "the job to score")
    ui = f"{server.url}/ui#token={server.token}"
    page = f"{server.url}/ui/jobs/{job_id}#token={server.token}"

    # the jobs list: the job, its task, and its progress advancing from one look to the next
    first = _browser(["--dump-dom", ui], tmp_path)
    assert "caps_web" in first and f'href="/ui/jobs/{job_id}"' in first
    before = _row_scores(first, job_id)
    assert before > 0
    wait_for(lambda: client.get(job_id)["progress"]["scores"] > before + 20, 90, "more scores")
    after = _row_scores(_browser(["--dump-dom", ui], tmp_path), job_id)
    assert after > before

    # the job's page while it runs: events read from the stream, candidates listed
    live = _browser(["--dump-dom", page], tmp_path)
    assert int(_attr(live, "data-events")) > 0 and int(_attr(live, "data-candidates")) >= 1
    assert 'data-candidate="human"' in live

    # once done: the final state, the result, every candidate with its lineage, every text escaped
    job = client.wait(job_id, timeout=180)
    assert job["state"] == "complete", job
    result = client.result(job_id)
    done = _browser(["--dump-dom", page], tmp_path)
    assert _attr(done, "data-state") == "complete" and _attr(done, "data-result") == "complete"
    assert int(_attr(done, "data-candidates")) == len(result["candidates"])
    for cand in result["candidates"]:
        row = re.search(rf'<tr id="cand-{cand["id"]}".*?</tr>', done)
        assert row, cand["id"]
        assert f'<td>{cand["id"]}</td>' in row.group(0)
        if cand["parent"]:
            assert f">{cand['parent']}</" in row.group(0)  # its parent id, linked when listed
        if cand["dev"]:
            assert f'{cand["dev"]["acc"]:.3f}' in row.group(0)
    assert "&lt;img src=x onerror=" in done and "&lt;b&gt;every&lt;/b&gt; word &amp;" in done
    assert "<img" not in done and "<title>apo</title>" in done

    # the leaderboard: fetched with the token and shown in a frame
    board = _browser(["--dump-dom", f"{server.url}/ui/leaderboard#token={server.token}"], tmp_path)
    assert int(_attr(board, "data-leaderboard")) > 1000
    assert re.search(r'<iframe id="leaderboard" title="leaderboard" sandbox="allow-scripts"', board)
    shot = tmp_path / "board.png"  # the sandboxed frame renders the report (not a blank frame)
    # (headless Chromium's screenshot does not wait for a sandboxed frame in its own process: keep it in the page's)
    _browser(["--disable-features=IsolateSandboxedIframes", f"--screenshot={shot}", "--window-size=1200,900",
              f"{server.url}/ui/leaderboard#token={server.token}"], tmp_path)
    width, _, pixels = _png_pixels(shot)
    inside = pixels[300 * width:800 * width]  # rows within the frame, below the page's heading
    assert len(set(inside)) > 20 and sum(p != b"\xff\xff\xff" for p in inside) > 0.02 * len(inside)

    # a screenshot of the job's page is not blank
    shot = tmp_path / "job.png"
    _browser([f"--screenshot={shot}", "--window-size=1200,900", page], tmp_path)
    assert shot.exists()
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (1200, 900)
    assert len(set(pixels)) > 50, "screenshot has almost no colours: nothing rendered"
    white = sum(1 for p in pixels if p == b"\xff\xff\xff")
    assert 1 - white / len(pixels) > 0.05, "screenshot is blank"

    # without a token the page asks for one and shows nothing of the server's
    fresh = tmp_path / "fresh"
    asked = _browser(["--dump-dom", f"{server.url}/ui"], fresh)
    assert _attr(asked, "data-login") == "1" and job_id not in asked
