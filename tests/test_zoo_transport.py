"""Downloads are bounded in time and size (issue 26), against real HTTP servers on 127.0.0.1.

A server that trickles bytes or goes silent is cut off at the total deadline (not
after each read's timeout); one that sends more bytes than the index records is cut at
that size. Nothing is kept in the cache in either case, and a well-behaved server is
still downloaded from.
"""

import hashlib
import http.server
import os
import threading
import time

import pytest

from learnit_tf import zoo
from learnit_tf.meta import init_io
from learnit_tf.zoo import transport as zoo_transport
from learnit_tf.models import Siren

DEADLINE = 1.5


class _Server:
    """Serves `files` ({url path: bytes}); `behaviour` ({url path: name}) misbehaves:
    "trickle" (one byte every 0.1 s), "silent" (headers, then nothing for 20 s),
    "endless" (no Content-Length, then bytes until the client hangs up)."""

    def __init__(self, files, behaviour):
        sent = self.sent = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # pylint: disable=invalid-name
                data = files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                mode = behaviour.get(self.path)
                self.send_response(200)
                if mode != "endless":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    if mode == "trickle":
                        for i in range(len(data)):
                            self.wfile.write(data[i:i + 1])
                            self.wfile.flush()
                            sent[self.path] = i + 1
                            time.sleep(0.1)
                    elif mode == "silent":
                        self.wfile.flush()
                        time.sleep(20)
                        self.wfile.write(data)
                    elif mode == "endless":
                        block, total, end = b"\0" * 65536, 0, time.monotonic() + 20
                        while time.monotonic() < end:
                            self.wfile.write(block)
                            total += len(block)
                            sent[self.path] = total
                    else:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # The client cut the download off.

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("published")
    init = init_io.save_init(Siren(width=8, depth=2, seed=1), str(root / "init"),
                             {"signal_class": "text"})
    zoo.publish(init, "tiny", "1", str(root / "zoo"))
    return root / "zoo"


@pytest.fixture
def serve(published, tmp_path, monkeypatch):
    """serve(behaviour) -> (Zoo reading the served index, server); deadline DEADLINE s."""
    monkeypatch.setenv(zoo_transport.ENV_DEADLINE, str(DEADLINE))
    servers = []

    def start(behaviour, index_behaviour=None):
        files = {}
        for directory, _, names in os.walk(published):
            for name in names:
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    files["/" + os.path.relpath(path, published)] = f.read()
        server = _Server(files, {**{f"/tiny/1/{k}": v for k, v in behaviour.items()},
                                 **({"/index.json": index_behaviour} if index_behaviour else {})})
        servers.append(server)
        return zoo.Zoo(server.url + "index.json", cache_dir=str(tmp_path / "cache")), server

    yield start
    for server in servers:
        server.close()


def _cached(tmp_path):
    root = tmp_path / "cache"
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, _, names in os.walk(root) for n in names if "pins" not in d)


def _timed(call):
    start = time.monotonic()
    try:
        call()
    finally:
        _timed.seconds = time.monotonic() - start


def test_a_trickling_server_is_cut_off_at_the_total_deadline(serve, tmp_path):
    # config.json (~500 bytes at 10 bytes/s) would take ~50 s: every read gets a byte in
    # time, so only a deadline for the whole download stops it.
    the_zoo, server = serve({"config.json": "trickle"})
    with pytest.raises(zoo.DownloadTimeoutError,
                       match=r"tiny/1/config.json: it did not finish within 1.5 s \(the total "
                             r"deadline of a download; \d+ bytes arrived\)\. Nothing was kept"):
        _timed(lambda: the_zoo.download("tiny", "1"))
    assert _timed.seconds < DEADLINE + 3, _timed.seconds
    assert 0 < server.sent["/tiny/1/config.json"] < 60  # It was cut off, not finished.
    assert "tiny/1/config.json" not in " ".join(_cached(tmp_path))
    assert not [p for p in _cached(tmp_path) if p.endswith(".part")]


def test_a_silent_server_is_cut_off_at_the_deadline_not_the_read_timeout(serve, tmp_path):
    the_zoo, _ = serve({"model.weights.h5": "silent"})
    with pytest.raises(zoo.DownloadTimeoutError, match=r"model.weights.h5: it did not finish "
                                                       r"within 1.5 s"):
        _timed(lambda: the_zoo.download("tiny", "1"))
    assert _timed.seconds < DEADLINE + 3, _timed.seconds  # Not the 60 s read timeout.
    assert not [p for p in _cached(tmp_path) if "model.weights.h5" in p]


def test_a_trickling_index_is_cut_off_too(serve):
    the_zoo, _ = serve({}, index_behaviour="trickle")
    with pytest.raises(zoo.DownloadTimeoutError, match=r"index.json: it did not finish"):
        _timed(the_zoo.list)
    assert _timed.seconds < DEADLINE + 3, _timed.seconds


def test_more_bytes_than_the_index_records_are_cut_at_the_recorded_size(serve, tmp_path,
                                                                      published):
    expected = os.path.getsize(published / "tiny" / "1" / "metadata.json")
    the_zoo, server = serve({"metadata.json": "endless"})
    with pytest.raises(zoo.IntegrityError, match=rf"sends more than the {expected} bytes the "
                                                 r"index records \(cut off there"):
        _timed(lambda: the_zoo.download("tiny", "1"))
    assert _timed.seconds < DEADLINE, _timed.seconds  # Cut at the size, not the deadline.
    assert not [p for p in _cached(tmp_path) if "metadata.json" in p]


def test_a_well_behaved_server_is_still_downloaded_from(serve, published):
    the_zoo, _ = serve({})
    directory = the_zoo.download("tiny", "1")
    for name in init_io.INIT_FILES:
        with open(os.path.join(directory, name), "rb") as a, \
                open(published / "tiny" / "1" / name, "rb") as b:
            assert hashlib.sha256(a.read()).digest() == hashlib.sha256(b.read()).digest()


def test_deadline_grows_with_the_size_and_the_environment_overrides_it(monkeypatch):
    monkeypatch.delenv(zoo_transport.ENV_DEADLINE, raising=False)
    assert zoo_transport.deadline_seconds(0) == 120
    assert zoo_transport.deadline_seconds(100 << 20) == 120 + 400  # 100 MiB at 256 KiB/s.
    monkeypatch.setenv(zoo_transport.ENV_DEADLINE, "7")
    assert zoo_transport.deadline_seconds(100 << 20) == 7
    for bad in ("0", "-1", "soon", "inf"):
        monkeypatch.setenv(zoo_transport.ENV_DEADLINE, bad)
        with pytest.raises(ValueError, match=rf"LEARNIT_TF_DOWNLOAD_DEADLINE={bad!r}: expected "
                                             r"a number of seconds > 0"):
            zoo_transport.deadline_seconds(1)

