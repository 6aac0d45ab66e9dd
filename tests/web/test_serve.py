"""`selfimprove serve` itself: it prints a tokened URL on 127.0.0.1, answers it, and stops
cleanly on Ctrl+C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

from tests.web.pages import request

START_SECONDS = 60


def test_serve_prints_a_tokened_url_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "selfimprove", "--runs-dir", str(tmp_path), "serve"]
    process = subprocess.Popen(
        [*command, "--port", "0", "--token", "a-token-for-the-test"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(START_SECONDS, process.kill)  # bounds the reads below
    watchdog.start()
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        found = re.fullmatch(
            r"http://127\.0\.0\.1:(\d+)/\?token=a-token-for-the-test", lines[1].strip()
        )
        assert found, lines
        base = f"http://127.0.0.1:{found[1]}"
        visit = request(base, urlsplit(lines[1].strip()).path + "?token=a-token-for-the-test")
        assert visit.status == 303 and visit.headers["location"] == "/"
        assert request(base, "/").status == 403
        page = request(base, "/", headers={"X-Selfimprove-Token": "a-token-for-the-test"})
        assert page.status == 200 and "No runs yet" in page.text
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=START_SECONDS)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out.strip() == "stopped" and "Traceback" not in err
