"""JSON logs: a node started with log_format=json writes one parseable object
per line, naming the node; exceptions show what text logs show and no more."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from authnet import logs
from authnet.config import Config, ConfigError
from authnet.node import resolve_node_id
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from tests.helpers import login, make_phone, serve_command

AUTHNET = [sys.executable, "-m", "authnet.cli"]
SECRET = "at1_" + "s3cr3t" * 8


def parse_lines(text: str) -> list[dict[str, str]]:
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines, "no log lines"
    for line in lines:
        assert isinstance(line, dict)
        assert {"ts", "level", "logger", "message"} <= line.keys(), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["ts"]), line
    return lines


def test_serve_with_json_logs_writes_parseable_lines(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        serve_command(data, "--log-format", "json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AUTHNET_NODE_ID": "node-a"},
    )
    try:
        assert proc.stdout is not None
        out = []
        for line in proc.stdout:
            out.append(line)
            if line.startswith("Stop with Ctrl-C"):
                break
        url = re.search(r"Metrics\s+(http://127\.0\.0\.1:\d+/metrics)", "".join(out))
        assert url is not None, out
        with urllib.request.urlopen(url.group(1), timeout=5) as r:
            assert 'authnet_node_info{node_id="node-a"' in r.read().decode()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    for text in (stderr, (data / "authnet.log").read_text()):
        lines = parse_lines(text)
        assert {line["node_id"] for line in lines} == {"node-a"}
        messages = [line["message"] for line in lines]
        assert any(m.startswith("node started sp=") for m in messages), messages
        assert "node stopped" in messages
        assert {line["logger"] for line in lines} >= {"authnet.node"}


async def test_nodes_in_one_process_label_their_own_lines(
    tmp_path: Path,
) -> None:
    async with (
        TestNetwork(tmp_path / "a", log_format="json", node_id="node-a") as a,
        TestNetwork(tmp_path / "b", log_format="json", node_id="node-b") as b,
    ):
        creds = await a.add_sp()
        phone = await make_phone(a, tmp_path / "phone.json")
        async with AsyncSPClient(creds) as sp:
            run = await login(sp, phone)
            assert run.kc is not None
    # Both nodes' handlers see every authnet line; each line names the node
    # whose server task wrote it.
    lines = parse_lines(a.log_path.read_text())
    authenticated = [line for line in lines if line["message"].startswith("ticket authenticated")]
    assert len(authenticated) == 1
    assert authenticated[0]["node_id"] == "node-a"
    started = {line["node_id"] for line in lines if line["message"].startswith("node started")}
    assert started == {"node-a", "node-b"}
    assert b.node.node_id == "node-b"


def _record_with_exception() -> logging.LogRecord:
    def fails(ticket: str) -> None:
        key_material = ticket.encode()  # a local: neither format renders locals
        raise ValueError(f"bad input of {len(key_material)} bytes")

    try:
        fails(SECRET)
    except ValueError:
        record = logging.getLogger("authnet.test").makeRecord(
            "authnet.test",
            logging.ERROR,
            __file__,
            1,
            "call failed (ref %s)",
            ("abcd1234",),
            sys.exc_info(),
            extra={"ticket": SECRET, "args_seen": [SECRET]},
        )
    return record


def test_exceptions_render_as_in_text_and_extras_are_not_dumped() -> None:
    text = logging.Formatter(logs.FORMAT).format(_record_with_exception())
    line = json.loads(logs.JsonFormatter("n1").format(_record_with_exception()))
    assert line["message"] == "call failed (ref abcd1234)"
    assert line["level"] == "ERROR"
    assert line["logger"] == "authnet.test"
    assert line["node_id"] == "n1"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert line["exc"].endswith("ValueError: bad input of 52 bytes")
    assert text.endswith(line["exc"])  # the same traceback as the text line's
    assert set(line) == {"ts", "level", "logger", "message", "node_id", "exc"}
    assert SECRET not in json.dumps(line)
    assert SECRET not in text


def test_node_id_comes_from_the_context_before_the_default() -> None:
    fmt = logs.JsonFormatter("process-default")
    record = logging.LogRecord("authnet.x", logging.INFO, __file__, 1, "hello", None, None)
    assert json.loads(fmt.format(record))["node_id"] == "process-default"
    token = logs.NODE_ID.set("from-context")
    try:
        assert json.loads(fmt.format(record))["node_id"] == "from-context"
    finally:
        logs.NODE_ID.reset(token)
    assert "node_id" not in json.loads(logs.JsonFormatter().format(record))


def test_unknown_log_format_says_which_exist() -> None:
    with pytest.raises(ConfigError, match="log_format must be one of text, json, not 'xml'"):
        logs.formatter("xml")


def test_node_id_setting_and_default(tmp_path: Path) -> None:
    assert resolve_node_id(Config(data_dir=tmp_path, node_id="eu-1")) == "eu-1"
    first = resolve_node_id(Config(data_dir=tmp_path))
    second = resolve_node_id(Config(data_dir=tmp_path))
    prefix = f"{socket.gethostname()}-{os.getpid()}-"
    assert first.startswith(prefix)
    assert re.fullmatch(r"[0-9a-f]{4}", first.removeprefix(prefix))
    assert second.startswith(prefix)
