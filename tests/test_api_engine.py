"""The engine behind the local API, under pressure, with a real server and worker: a full
queue answers 429, a client that drops its stream (or leaves the queue) frees the engine
at once, and a worker killed with SIGKILL mid-stream ends that stream with an error while
the next request is served by a fresh worker."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest

from api_kit import EOS_BIAS, MODEL, Server, install_smollm2

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_machine_policy")]

LONG = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 3000, "temperature": 0.8, "logit_bias": EOS_BIAS}
SHORT = {"model": MODEL, "prompt": "Hello", "max_tokens": 2, "temperature": 0}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    work = tmp_path_factory.mktemp("api-engine")
    install_smollm2(work / "home", work)
    return work / "home"


@pytest.fixture
def server(home):
    s = Server(home, "--queue", "1")
    yield s
    s.stop()


def wait_for_log(server: Server, pattern: str, timeout: float = 30) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, server.log())
        if m:
            return m
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in the server's log:\n{server.log()}")


def test_a_full_queue_answers_429_and_a_waiting_client_that_leaves_is_dropped(server) -> None:
    running = server.open_stream(LONG)
    assert running.start() == 200 and running.next_event() is not None  # generating
    waiting = server.open_stream(LONG)  # the one queue place
    time.sleep(1.0)
    t0 = time.monotonic()
    status, _, body = server.request("POST", "/v1/completions", SHORT, timeout=30)
    assert status == 429, body
    assert b'"code": "queue_full"' in body and b'"type": "rate_limit_error"' in body
    assert time.monotonic() - t0 < 5  # refused at once, not after waiting
    waiting.drop()  # leaves the queue without ever running
    wait_for_log(server, r"text_completion \S+ cancelled while queued")
    running.drop()
    wait_for_log(server, r"finish=stopped")
    status, _, _ = server.request("POST", "/v1/completions", SHORT, timeout=60)
    assert status == 200


def test_a_dropped_stream_stops_the_generation_promptly(server) -> None:
    stream = server.open_stream(LONG)
    for _ in range(3):
        assert stream.next_event() is not None
    dropped_at = stream.drop()
    m = wait_for_log(server, r"finish=stopped tokens=(\d+) client_gone_at=([\d.]+) worker_stopped_at=([\d.]+) "
                             r"stop_ms=([\d.]+)")
    assert int(m.group(1)) < 3000
    stopped_at = float(m.group(3))
    assert stopped_at - dropped_at < 2.0, (dropped_at, m.group(0))  # the bench measures it closely
    t0 = time.monotonic()
    status, _, _ = server.request("POST", "/v1/completions", SHORT, timeout=60)
    assert status == 200 and time.monotonic() - t0 < 20  # the engine was free, not busy with 3000 tokens


def test_a_dropped_non_streamed_request_stops_too(server) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/v1/completions", body=__import__("json").dumps({**LONG, "stream": False}),
                 headers=server.headers())
    time.sleep(2.0)  # running by now
    conn.sock.shutdown(__import__("socket").SHUT_RDWR)
    conn.close()
    wait_for_log(server, r"finish=stopped .*stop_ms=")


def test_worker_killed_mid_stream_ends_that_stream_with_an_error_and_the_next_request_is_served(server) -> None:
    stream = server.open_stream(LONG)
    assert stream.next_event() is not None and stream.next_event() is not None
    [pid] = server.worker_pids()
    os.kill(pid, signal.SIGKILL)
    events = []
    while True:
        ev = stream.next_event()
        if ev is None:
            break
        events.append(ev)
    stream.close()
    assert "[DONE]" not in events
    err = events[-1]["error"]
    assert err["code"] == "engine_crashed" and "SIGKILL" in err["message"]
    status, _, body = server.request("POST", "/v1/chat/completions",
                                     {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
                                     timeout=120)
    assert status == 200, body
    assert server.worker_pids() and server.worker_pids() != [pid]


def test_concurrent_clients_are_served_in_turn(home) -> None:
    s = Server(home, "--queue", "16")
    try:
        results: dict[int, tuple[int, bytes]] = {}

        def client(i: int) -> None:
            st, _, b = s.request("POST", "/v1/completions",
                                 {"model": MODEL, "prompt": f"Number {i}:", "max_tokens": 4, "temperature": 0},
                                 timeout=300)
            results[i] = (st, b)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert sorted(results) == list(range(6))
        assert all(st == 200 for st, _ in results.values()), results
    finally:
        s.stop()
