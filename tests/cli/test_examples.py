#!/usr/bin/env python3
"""The Node.js and Python examples against a real bridge and a real redis-server: each
subscribes, receives what another process (the same example) published, reports the gap
a Redis restart causes, and exits 0 on SIGTERM. The *_access cases run them against a
bridge with an access file, with and without BRIDGE_TOKEN; the *_older cases against a
server without SubscribeBatched (bench/baselines/grpc_server.js, whose grpc-js answers it
UNIMPLEMENTED, as a Bridge older than the method does), where they call Subscribe. The
*_durable cases restart the subscriber's bridge while a replica takes publishes on a
durable channel: the example resumes and gets exactly what it missed.

    test_examples.py {node,python}[_access|_older|_durable] --bridge PATH --bridgectl PATH
                     [--python /usr/bin/python3]
"""

import pathlib
import re
import shutil
import signal
import sys
import tempfile

from harness import (ACCESS, READER_TOKEN, UNKNOWN_TOKEN, WRITER_TOKEN, Proc, Redis, Stack,
                     TestFailure, free_port, main, run)

ROOT = pathlib.Path(__file__).resolve().parents[2]
ACCESS_TOKENS = (READER_TOKEN, WRITER_TOKEN, UNKNOWN_TOKEN)


def exercise(args, command, env=None):
    """`command` + [subcommand args] runs the example."""
    stack = Stack(args.bridge, args.bridgectl)
    try:
        stack.start()
        addr = ["--addr", stack.addr]
        sub = stack.spawn(command + addr + ["subscribe", "orders", "--pattern", "audit.*"],
                          name="subscriber", env=env)
        sub.expect(r"^subscribed channel orders$")
        sub.expect(r"^subscribed pattern audit\.\*$")

        code, out, err = run(command + addr + ["publish", "orders", "order 1"], env=env)
        if code != 0 or out.strip() != "published to orders: 1 receiver":
            raise TestFailure(f"publish: exit {code}\n{out}{err}")
        sub.expect(r"^orders #1: order 1$")
        code, out, err = run(command + addr + ["publish", "audit.log"], env=env,
                             stdin_bytes=b"from stdin\n")
        if code != 0:
            raise TestFailure(f"publish from stdin: exit {code}\n{out}{err}")
        sub.expect(r"^audit\.log \(audit\.\*\) #1: from stdin\\n$")

        # Redis restarts on the same port: the bridge reconnects, resubscribes and tells
        # every subscription that messages may have been lost.
        stack.redis.kill()
        stack.redis.start()
        gaps = {sub.expect(r"^gap (channel orders|pattern audit\.\*): redis_reconnect$",
                           timeout=30).group(1) for _ in range(2)}
        if gaps != {"channel orders", "pattern audit.*"}:
            raise TestFailure(f"gaps: {gaps}\n" + sub.transcript())
        # The publish connection comes back on its own schedule, which Bridge logs.
        stack.bridge.expect(r"publisher connection to \S+ ready again", stream="stderr",
                            timeout=30)
        code, out, err = run(command + addr + ["publish", "orders", "order 2"], env=env)
        if code != 0:
            raise TestFailure(f"publish after the restart: exit {code}\n{out}{err}")
        sub.expect(r"^orders #\d+: order 2$")

        # An error from the server: printed with its code, exit 1.
        code, out, err = run(command + addr + ["publish", "", "x"], env=env)
        if code != 1 or "INVALID_ARGUMENT" not in err:
            raise TestFailure(f"publish to '': exit {code}\n{out}{err}")

        sub.signal(signal.SIGTERM)
        sub.expect_exit(0)
    except TestFailure as e:
        raise TestFailure(f"{e}\n{stack.bridge.transcript() if stack.bridge else ''}") from None
    finally:
        stack.close()


def exercise_access(args, command, env=None):
    """Against a bridge with an access file: BRIDGE_TOKEN goes with Subscribe and Publish;
    without it, or beyond what it allows, the example exits 1 with the code."""
    stack = Stack(args.bridge, args.bridgectl, access=ACCESS)

    def with_token(token):
        # An empty BRIDGE_TOKEN counts as unset, whatever the tests' environment holds.
        return {**(env or {}), "BRIDGE_TOKEN": token}

    def refused(code_name, token, *cmd):
        code, out, err = run(command + ["--addr", stack.addr, *cmd], env=with_token(token))
        if code != 1 or code_name not in err or any(t in out + err for t in ACCESS_TOKENS):
            raise TestFailure(f"{cmd} with {token or 'no token'!r}: exit {code}, expected 1 "
                              f"with {code_name} and no token printed\n{out}{err}")

    try:
        stack.start()
        addr = ["--addr", stack.addr]
        refused("UNAUTHENTICATED", "", "subscribe", "news")
        refused("UNAUTHENTICATED", UNKNOWN_TOKEN, "subscribe", "news")
        refused("UNAUTHENTICATED", "", "publish", "prices.eu", "x")

        sub = stack.spawn(command + addr + ["subscribe", "news", "--pattern", "prices.*"],
                          name="subscriber", env=with_token(READER_TOKEN))
        sub.expect(r"^subscribed channel news$")
        sub.expect(r"^subscribed pattern prices\.\*$")
        code, out, err = run(command + addr + ["publish", "prices.eu", "42"],
                             env=with_token(WRITER_TOKEN))
        if code != 0 or out.strip() != "published to prices.eu: 1 receiver":
            raise TestFailure(f"publish with the writer's token: exit {code}\n{out}{err}")
        sub.expect(r"^prices\.eu \(prices\.\*\) #1: 42$")

        refused("PERMISSION_DENIED", READER_TOKEN, "subscribe", "news", "orders")
        refused("PERMISSION_DENIED", WRITER_TOKEN, "publish", "news", "x")

        sub.signal(signal.SIGTERM)
        sub.expect_exit(0)
    except TestFailure as e:
        raise TestFailure(f"{e}\n{stack.bridge.transcript() if stack.bridge else ''}") from None
    finally:
        stack.close()


def exercise_durable(args, command, env=None):
    """A durable channel: the example's publish prints offset and epoch, its subscriber
    shows them, and after its bridge restarts it resumes: the messages published meanwhile
    (through a replica on the same Redis) come once each, in offset order, recovered, and
    no gap for the channel; a plain channel still gets its bridge_reconnect gap."""
    stack = Stack(args.bridge, args.bridgectl, ["--history=orders*=1000/24h"])
    replica = None
    try:
        stack.start()
        replica, replica_addr = stack.start_replica()

        def publish(addr, channel, data):
            code, out, err = run(command + ["--addr", addr, "publish", channel, data], env=env)
            if code != 0:
                raise TestFailure(f"publish {data} at {addr}: exit {code}\n{out}{err}")
            return out.strip()

        sub = stack.spawn(command + ["--addr", stack.addr, "subscribe", "orders", "news"],
                          name="subscriber", env=env)
        sub.expect(r"^subscribed channel orders$")
        sub.expect(r"^subscribed channel news$")
        out = publish(stack.addr, "orders", "o1")
        m = re.fullmatch(r"published to orders: 1 receiver \(offset=1 epoch=(\S+)\)", out)
        if not m:
            raise TestFailure(f"publish to a durable channel: {out!r}")
        epoch = m.group(1)
        sub.expect(rf"^orders #1 offset=1 epoch={re.escape(epoch)}: o1$")
        publish(stack.addr, "news", "n1")
        sub.expect(r"^news #1: n1$")

        stack.stop_bridge()
        sub.expect(r"reconnecting in", stream="stderr")
        for i in (2, 3):
            publish(replica_addr, "orders", f"o{i}")
        stack.start_bridge()
        sub.expect(r"^gap channel news: bridge_reconnect$", timeout=40)
        publish(stack.addr, "orders", "o4")
        sub.expect(r"^orders #\d+ offset=4 ")
        lines = [l for l in sub.lines["stdout"] if l.startswith(("orders", "gap channel orders"))]
        want = [f"orders #1 offset=1 epoch={epoch}: o1",
                f"orders offset=2 epoch={epoch} recovered: o2",
                f"orders offset=3 epoch={epoch} recovered: o3",
                f"orders #N offset=4 epoch={epoch}: o4"]
        # The live message's seq is the new stream's.
        if [re.sub(r"^orders #\d+ offset=4 ", "orders #N offset=4 ", l) for l in lines] != want:
            raise TestFailure(f"orders lines {lines}, want {want}\n" + sub.transcript())
        sub.signal(signal.SIGTERM)
        sub.expect_exit(0)
    except TestFailure as e:
        raise TestFailure(f"{e}\n{stack.bridge.transcript() if stack.bridge else ''}"
                          f"\n{replica.transcript() if replica else ''}") from None
    finally:
        stack.close()


def exercise_older(args, command, env=None):
    """Against a server that has Subscribe only: the example falls back to it and prints
    the same lines."""
    workdir = tempfile.mkdtemp(prefix="bridge-cli-older-")
    redis = Redis(workdir)
    baselines = ROOT / "bench" / "baselines"
    if not (baselines / "node_modules" / "ioredis").is_dir():
        raise TestFailure(f"{baselines}/node_modules is missing: run scripts/npm-deps")
    server = sub = None
    try:
        redis.start()
        port = free_port()
        server = Proc(["node", baselines / "grpc_server.js", "--port", port, "--redis", redis.url,
                       "--proto", ROOT / "proto"], name="older server")
        server.expect(r"listening")
        addr = ["--addr", f"127.0.0.1:{port}"]
        sub = Proc(command + addr + ["subscribe", "orders"], name="subscriber", env=env)
        sub.expect(r"^subscribed channel orders$")
        code, out, err = run(command + addr + ["publish", "orders", "order 1"], env=env)
        if code != 0 or out.strip() != "published to orders: 1 receiver":
            raise TestFailure(f"publish: exit {code}\n{out}{err}")
        sub.expect(r"^orders #1: order 1$")
        sub.signal(signal.SIGTERM)
        sub.expect_exit(0)
        if "UNIMPLEMENTED" in sub.transcript():
            raise TestFailure("the fallback was reported as an error\n" + sub.transcript())
    finally:
        for proc in (sub, server):
            if proc is not None:
                proc.stop()
        redis.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def node(args, check=exercise):
    node_dir = ROOT / "clients" / "node"
    if not (node_dir / "node_modules" / "@grpc" / "grpc-js").is_dir():
        raise TestFailure(f"{node_dir}/node_modules is missing: run scripts/npm-deps")
    check(args, ["node", str(node_dir / "bridge-client.js")])


def python(args, check=exercise):
    with tempfile.TemporaryDirectory(prefix="bridge-py-stubs-") as stubs:
        # Generated at test time, into a build directory: never committed.
        code, out, err = run([ROOT / "clients" / "python" / "generate_stubs.sh", stubs])
        if code != 0:
            raise TestFailure(f"generate_stubs.sh: exit {code}\n{out}{err}")
        check(args, [args.python, str(ROOT / "clients" / "python" / "bridge_client.py")],
              env={"BRIDGE_PY_STUBS": stubs, "PYTHONDONTWRITEBYTECODE": "1"})


if __name__ == "__main__":
    sys.exit(main({"node": node, "python": python,
                   "node_access": lambda args: node(args, exercise_access),
                   "python_access": lambda args: python(args, exercise_access),
                   "node_older": lambda args: node(args, exercise_older),
                   "python_older": lambda args: python(args, exercise_older),
                   "node_durable": lambda args: node(args, exercise_durable),
                   "python_durable": lambda args: python(args, exercise_durable)},
                  sys.argv[1:]))
