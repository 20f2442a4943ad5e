"""What the client tests share: a real redis-server and a real bridge on free loopback
ports, and child processes whose output lines a test waits for with a deadline.

Nothing here sleeps or polls to synchronise: a test waits for a line (a server's "ready"
log line, a client's event) or an exit, each with a deadline.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

TIMEOUT = float(os.environ.get("BRIDGE_TEST_TIMEOUT", "20"))

# An access file (`bridge --access_file`) for the tests of tokens: a reader that may
# subscribe to prices.* and news and publish nothing, and a writer that may publish to
# prices.* and subscribe to nothing.
READER_TOKEN = "reader-token-0123456789"
WRITER_TOKEN = "writer-token-0123456789"
UNKNOWN_TOKEN = "unknown-token-0123456789"
ACCESS = {"clients": [
    {"name": "reader", "token": READER_TOKEN, "subscribe": ["prices.*", "news"], "publish": []},
    {"name": "writer", "token": WRITER_TOKEN, "subscribe": [], "publish": ["prices.*"]},
]}


class TestFailure(AssertionError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process whose stdout and stderr lines are collected as they come."""

    def __init__(self, argv, name=None, stdin=subprocess.DEVNULL, env=None, cwd=None):
        self.name = name or os.path.basename(argv[0])
        self.argv = [str(a) for a in argv]
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.popen = subprocess.Popen(self.argv, stdin=stdin, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, env=full_env, cwd=cwd)
        self.lines = {"stdout": [], "stderr": []}
        self.cursor = {"stdout": 0, "stderr": 0}
        self.changed = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(stream, pipe), daemon=True)
                        for stream, pipe in (("stdout", self.popen.stdout),
                                             ("stderr", self.popen.stderr))]
        for r in self.readers:
            r.start()

    def _read(self, stream, pipe):
        for raw in pipe:
            with self.changed:
                self.lines[stream].append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def transcript(self) -> str:
        with self.changed:
            out = "\n".join(f"  | {l}" for l in self.lines["stdout"])
            err = "\n".join(f"  ! {l}" for l in self.lines["stderr"])
        return f"{self.name} ({' '.join(self.argv)}):\n{out}\n{err}"

    def expect(self, pattern, stream="stdout", timeout=TIMEOUT):
        """Waits for the next line (after those already matched) that matches `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                lines = self.lines[stream]
                for i in range(self.cursor[stream], len(lines)):
                    m = regex.search(lines[i])
                    if m:
                        self.cursor[stream] = i + 1
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and
                                 not any(r.is_alive() for r in self.readers)):
                    break
                self.changed.wait(min(left, 0.5))
        raise TestFailure(f"no {stream} line matching {pattern!r} within {timeout}s\n"
                          + self.transcript())

    def wait(self, timeout=TIMEOUT) -> int:
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"{self.name} still running after {timeout}s\n"
                              + self.transcript()) from None
        for r in self.readers:
            r.join(timeout)
        return code

    def expect_exit(self, code, timeout=TIMEOUT):
        got = self.wait(timeout)
        if got != code:
            raise TestFailure(f"{self.name} exited {got}, expected {code}\n" + self.transcript())

    def signal(self, sig):
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def stop(self):
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()


def run(argv, stdin_bytes=None, timeout=TIMEOUT, env=None):
    """Runs a command to its end: (exit status, stdout, stderr) as text."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    done = subprocess.run([str(a) for a in argv], input=stdin_bytes or b"",
                          capture_output=True, timeout=timeout, env=full_env)
    return (done.returncode, done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"))


class Redis:
    """redis-server on a free port in a temporary directory; restartable on that port."""

    def __init__(self, workdir):
        self.port = free_port()
        self.dir = workdir
        self.proc = None

    def start(self):
        # Redis drops a pub/sub connection whose unread output passes 32 MB. The flood test
        # publishes 64 MB at once; a sanitizer build of Bridge reads slower than Redis
        # writes, and the limit would turn a slow_consumer gap into a redis_reconnect one.
        self.proc = Proc(["redis-server", "--port", self.port, "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", self.dir,
                          "--client-output-buffer-limit", "pubsub 512mb 256mb 60"],
                         name="redis")
        self.proc.expect(r"Ready to accept connections")

    def publish_many(self, channel, payload: bytes, count):
        """PUBLISHes `count` times in one pipelined write, faster than any client could;
        returns once Redis answered them all."""
        c = channel.encode()
        command = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            len(c), c, len(payload), payload)
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as s:
            s.sendall(command * count)
            replies = b""
            while replies.count(b"\r\n") < count:
                chunk = s.recv(65536)
                if not chunk:
                    raise TestFailure("redis closed the connection during PUBLISH")
                replies += chunk

    def kill(self):
        """As a crash would: SIGKILL, then wait for it to be gone."""
        if self.proc:
            self.proc.stop()
            self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"


class Stack:
    """One redis-server and one bridge for a test, torn down by close(). With `access` (the
    JSON of an access file), bridge runs with --access_file."""

    def __init__(self, bridge_bin, bridgectl_bin, extra_flags=(), access=None):
        self.dir = tempfile.mkdtemp(prefix="bridge-cli-test-")
        self.bridge_bin = bridge_bin
        self.bridgectl = bridgectl_bin
        self.extra_flags = list(extra_flags)
        if access is not None:
            path = os.path.join(self.dir, "access.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(access, f)
            self.extra_flags.append(f"--access_file={path}")
        self.redis = Redis(self.dir)
        self.grpc_port = free_port()
        self.ws_port = free_port()
        self.bridge = None
        self.children = []

    @property
    def addr(self):
        return f"127.0.0.1:{self.grpc_port}"

    def start(self):
        self.redis.start()
        self.start_bridge()
        return self

    def start_bridge(self):
        self.bridge = self._launch_bridge(self.grpc_port, self.ws_port, "bridge")

    def start_replica(self):
        """A second bridge on the same Redis, with the same flags, on ports of its own;
        stopped by close(). Returns (its Proc, its gRPC address)."""
        grpc_port = free_port()
        proc = self._launch_bridge(grpc_port, free_port(), "replica")
        self.children.append(proc)
        return proc, f"127.0.0.1:{grpc_port}"

    def _launch_bridge(self, grpc_port, ws_port, name):
        proc = Proc([self.bridge_bin, f"--redis={self.redis.url}",
                     f"--grpc_addr=127.0.0.1:{grpc_port}"] + self.extra_flags,
                    # Through the environment, the other way to set any flag.
                    env={"BRIDGE_WS_ADDR": f"127.0.0.1:{ws_port}"},
                    name=name)
        proc.expect(r"gRPC listening on", stream="stderr")
        # SERVING means connected to Redis: from then on, subscriptions are confirmed.
        code, out, err = run([self.bridgectl, "health", "--wait", "--timeout", f"{TIMEOUT}s",
                              "--addr", f"127.0.0.1:{grpc_port}"])
        if code != 0:
            raise TestFailure(f"{name} never SERVING: {out}{err}\n" + proc.transcript())
        return proc

    def stop_bridge(self):
        self.bridge.signal(signal.SIGTERM)
        self.bridge.wait()

    def spawn(self, argv, **kwargs):
        p = Proc(argv, **kwargs)
        self.children.append(p)
        return p

    def bridgectl_proc(self, *args, **kwargs):
        return self.spawn([self.bridgectl, *args, "--addr", self.addr], name="bridgectl",
                          **kwargs)

    def ctl(self, *args, stdin_bytes=None, env=None):
        return run([self.bridgectl, *args, "--addr", self.addr], stdin_bytes=stdin_bytes,
                   env=env)

    def close(self):
        for p in self.children:
            p.stop()
        if self.bridge:
            self.bridge.stop()
        self.redis.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def main(cases, argv):
    """Runs the case named by argv[1] (all of them without one): the ctest entry point."""
    import argparse  # pylint: disable=import-outside-toplevel
    parser = argparse.ArgumentParser()
    parser.add_argument("case", nargs="?", choices=sorted(cases))
    parser.add_argument("--bridge", required=True)
    parser.add_argument("--bridgectl", required=True)
    parser.add_argument("--python", default="/usr/bin/python3")
    args = parser.parse_args(argv)
    failed = 0
    for name in [args.case] if args.case else sorted(cases):
        start = time.monotonic()
        try:
            cases[name](args)
            print(f"PASS {name} ({time.monotonic() - start:.1f}s)", flush=True)
        except TestFailure as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
    return 1 if failed else 0
