"""``linkpay dev`` as an operator runs it: a real process on the embedded defaults."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


@pytest.fixture
def dev_server(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKPAY_")}
    # No quiet hours (start = end), so the demo texts must really go out at any hour:
    # the test then proves the worker thread runs.
    env["LINKPAY_COMPLIANCE_QUIET_START"] = env["LINKPAY_COMPLIANCE_QUIET_END"] = "08:00"
    process = subprocess.Popen(
        [sys.executable, "-m", "linkpay.cli", "dev", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    try:
        yield f"http://127.0.0.1:{port}", "".join(lines)
    finally:
        process.terminate()
        process.wait(timeout=10)
        print("linkpay dev printed after start-up:\n" + process.stdout.read()[-6000:])


def _wait_until_up(base: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            _get(f"{base}/healthz")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_dev_prints_demo_links_and_serves_pages_and_outbox(dev_server):
    base, printed = dev_server
    links = re.findall(rf"{re.escape(base)}/p/\S+", printed)
    assert len(links) == 4, printed
    assert f"{base}/outbox" in printed
    _wait_until_up(base)

    status, health = _get(f"{base}/healthz")
    assert status == 200 and '"queue_mode":"embedded"' in health.replace(" ", "")

    status, page = _get(links[0])
    assert status == 200 and "Alex" in page

    # The token's middle part is its signing second, so the texted URL can differ from the
    # printed one when the job runs a second later; the first part names the link.
    alex_link = links[0].split("/p/")[1].split(".")[0]
    deadline = time.monotonic() + 20
    while True:  # the worker thread sends the demo links into the outbox
        _, outbox = _get(f"{base}/outbox")
        if f"/p/{alex_link}." in outbox and outbox.count('class="status">sent<') == 6:
            break  # 4 demo accounts: 2 with phone and email, 1 phone only, 1 email only
        if time.monotonic() > deadline:
            statuses = re.findall(r'class="status">(\w+)<', outbox)
            pytest.fail(f"demo links never reached the outbox: {statuses}, {alex_link}")
        time.sleep(0.2)
