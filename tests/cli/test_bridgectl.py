#!/usr/bin/env python3
"""bridgectl against a real bridge and a real redis-server: subscribe, publish, health,
--json, --reconnect, signals, exit statuses on errors, tokens (--token, BRIDGE_TOKEN)
against a bridge with an access file, and durable channels (offsets, history, a
--reconnect resuming on another replica and on the restarted bridge).

    test_bridgectl.py [CASE] --bridge PATH --bridgectl PATH
"""

import base64
import json
import os
import pty
import re
import signal
import subprocess
import sys

from harness import (ACCESS, READER_TOKEN, TIMEOUT, UNKNOWN_TOKEN, WRITER_TOKEN, Proc, Stack,
                     TestFailure, free_port, main, run)

TOKENS = (READER_TOKEN, WRITER_TOKEN, UNKNOWN_TOKEN)
# For the calls that must send no token, whatever the environment running the tests holds:
# an empty BRIDGE_TOKEN counts as unset.
NO_TOKEN = {"BRIDGE_TOKEN": ""}


def check(condition, what, *details):
    if not condition:
        raise TestFailure(what + "".join(f"\n  {d}" for d in details))


def with_stack(test):
    def wrapped(args):
        stack = Stack(args.bridge, args.bridgectl)
        try:
            stack.start()
            test(stack)
        except TestFailure as e:
            raise TestFailure(f"{e}\n{stack.bridge.transcript() if stack.bridge else ''}") from None
        finally:
            stack.close()
    return wrapped


@with_stack
def subscribe_publish(stack):
    sub = stack.bridgectl_proc("subscribe", "news", "--pattern", "news.*")
    sub.expect(r"^subscribed channel news$")
    sub.expect(r"^subscribed pattern news\.\*$")

    code, out, err = stack.ctl("publish", "news", "hello")
    check(code == 0, "publish failed", out, err)
    check(out.strip() == "published to news: 1 receiver", "publish output", out)
    sub.expect(r"^news #1: hello$")

    code, out, err = stack.ctl("publish", "news.eu", stdin_bytes=b"line one\nline two\t\\")
    check(code == 0, "publish from stdin failed", out, err)
    sub.expect(r"^news\.eu \(news\.\*\) #1: line one\\nline two\\t\\\\$")

    code, out, err = stack.ctl("publish", "news", stdin_bytes="héllo \x01".encode() + b"\xff")
    check(code == 0, "publish of bytes failed", out, err)
    sub.expect(r"^news #2: héllo \\x01\\xff$")

    # A message for nobody: receivers is 0 and it is no error.
    code, out, err = stack.ctl("publish", "elsewhere", "x")
    check(code == 0 and out.strip() == "published to elsewhere: 0 receivers", "publish", out, err)
    # With a key, a retry is not published again, and says so.
    code, out, err = stack.ctl("publish", "elsewhere", "once", "--key", "cli-key-1")
    check(code == 0 and out.strip() == "published to elsewhere: 0 receivers", "keyed", out, err)
    code, out, err = stack.ctl("publish", "--json", "elsewhere", "once", "--key", "cli-key-1")
    check(code == 0 and json.loads(out) == {"op": "published", "channel": "elsewhere",
                                            "receivers": 0, "duplicate": True},
          "keyed retry", out, err)

    sub.signal(signal.SIGINT)
    sub.expect_exit(0)
    term = stack.bridgectl_proc("subscribe", "news")
    term.expect(r"^subscribed channel news$")
    term.signal(signal.SIGTERM)
    term.expect_exit(0)


@with_stack
def json_output(stack):
    sub = stack.bridgectl_proc("subscribe", "--json", "--count", "3", "a", "-p", "b.*")
    first = [json.loads(sub.expect(r"^\{.*\}$").group(0)) for _ in range(2)]
    check({json.dumps(e, sort_keys=True) for e in first} == {
        json.dumps({"op": "subscribed", "channel": "a"}, sort_keys=True),
        json.dumps({"op": "subscribed", "pattern": "b.*"}, sort_keys=True)},
        "subscribed events", first)

    code, out, err = stack.ctl("publish", "--json", "a", "hi \"there\"")
    check(code == 0, "publish --json failed", out, err)
    check(json.loads(out) == {"op": "published", "channel": "a", "receivers": 1}, "publish", out)
    code, out, err = stack.ctl("publish", "a", stdin_bytes=b"\x00\xff\xfe")
    check(code == 0, "publish bytes failed", out, err)
    code, out, err = stack.ctl("publish", "b.1", "via pattern")
    check(code == 0, "publish b.1 failed", out, err)

    events = [json.loads(sub.expect(r"^\{.*\}$").group(0)) for _ in range(3)]
    check(events[0] == {"op": "message", "channel": "a", "seq": 1, "data": "hi \"there\""},
          "text message", events[0])
    check(events[1]["op"] == "message" and "data" not in events[1]
          and base64.b64decode(events[1]["data_b64"]) == b"\x00\xff\xfe",
          "binary message comes as data_b64", events[1])
    check(events[2] == {"op": "message", "channel": "b.1", "pattern": "b.*", "seq": 1,
                        "data": "via pattern"}, "pattern message", events[2])
    # --count 3: exits by itself, cleanly.
    sub.expect_exit(0)

    code, out, err = stack.ctl("health", "--json")
    check(code == 0 and json.loads(out) == {"service": "", "status": "SERVING"}, "health", out, err)


@with_stack
def health(stack):
    for service in ("", "bridge.v1.Bridge"):
        code, out, err = stack.ctl("health", "--service", service)
        check(code == 0 and out.strip() == "SERVING", f"health of {service!r}", out, err)
    code, out, err = stack.ctl("health", "--service", "no.such.Service")
    check(code == 1 and "NOT_FOUND" in err, "unknown service is NOT_FOUND, exit 1", code, err)

    # --watch prints every change: Redis gone, NOT_SERVING; a check then says so, exit 1.
    watcher = stack.bridgectl_proc("health", "--watch")
    watcher.expect(r"^SERVING$")
    stack.redis.kill()
    watcher.expect(r"^NOT_SERVING$")
    code, out, err = stack.ctl("health")
    check(code == 1 and out.strip() == "NOT_SERVING", "health without Redis", code, out, err)

    # health --wait follows the Watch stream back to SERVING once Redis returns.
    waiter = stack.bridgectl_proc("health", "--wait", "--timeout", "30s")
    stack.redis.start()
    waiter.expect(r"^SERVING$", timeout=30)
    waiter.expect_exit(0)
    watcher.expect(r"^SERVING$")
    watcher.signal(signal.SIGINT)
    watcher.expect_exit(0)
    # The server gone ends a watch with an error.
    watcher = stack.bridgectl_proc("health", "--watch", "--json")
    watcher.expect(r'"status":"SERVING"')
    stack.stop_bridge()
    watcher.expect_exit(1)


def errors(args):
    # Nothing listens: UNAVAILABLE, exit 1, for every command.
    dead = f"127.0.0.1:{free_port()}"
    for cmd in (["health"], ["publish", "a", "b"], ["subscribe", "a"]):
        code, out, err = run([args.bridgectl, *cmd, "--addr", dead, "--timeout", "5s"]
                             if cmd[0] != "subscribe" else [args.bridgectl, *cmd, "--addr", dead])
        check(code == 1 and "UNAVAILABLE" in err, f"{cmd[0]} on a dead address", code, out, err)
    # BRIDGE_ADDR is read, and --addr wins over it.
    code, _, err = run([args.bridgectl, "health"], env={"BRIDGE_ADDR": dead})
    check(code == 1 and "UNAVAILABLE" in err, "BRIDGE_ADDR honoured", err)

    # Usage errors: exit 2, before any call.
    for cmd in ([], ["subscribe"], ["publish"], ["frobnicate"], ["health", "--count", "1"],
                ["subscribe", "a", "--timeout", "soon"]):
        code, _, err = run([args.bridgectl, *cmd])
        check(code == 2 and "bridgectl --help" in err, f"usage error for {cmd}", code, err)
    code, out, _ = run([args.bridgectl, "--help"])
    check(code == 0 and "Usage:" in out, "--help", out)
    check("--token TOKEN" in out and "$BRIDGE_TOKEN" in out, "--help documents --token", out)
    # A token that cannot be sent: a usage error that does not quote it, before any call.
    for cmd, env in ((["subscribe", "a", "--token"], {}),
                     (["publish", "a", "b", "--token", "s3cret with space"], {}),
                     (["health"], {"BRIDGE_TOKEN": "s3cret\tTab"})):
        code, out, err = run([args.bridgectl, "--addr", dead, *cmd], env=env)
        check(code == 2 and "bridgectl --help" in err and "s3cret" not in out + err,
              f"bad token for {cmd} {env}", code, out, err)
    # Nor does --help show the value of BRIDGE_TOKEN.
    code, out, err = run([args.bridgectl, "--help"], env={"BRIDGE_TOKEN": READER_TOKEN})
    check(code == 0 and READER_TOKEN not in out + err, "--help shows no token", out, err)

    # Errors from the server itself: printed with their code, exit 1, never retried.
    stack = Stack(args.bridge, args.bridgectl)
    try:
        stack.start()
        code, _, err = stack.ctl("publish", "", "x")
        check(code == 1 and "INVALID_ARGUMENT" in err, "publish to an empty channel", code, err)
        for extra in ([], ["--reconnect"]):
            code, _, err = stack.ctl("subscribe", "", *extra)
            check(code == 1 and "INVALID_ARGUMENT" in err, f"subscribe '' {extra}", code, err)
    finally:
        stack.close()


@with_stack
def reconnect(stack):
    sub = stack.bridgectl_proc("subscribe", "--reconnect", "news")
    sub.expect(r"^subscribed channel news$")

    # Redis restarts: the bridge keeps the stream and announces the loss.
    stack.redis.kill()
    stack.redis.start()
    sub.expect(r"^gap channel news: redis_reconnect$", timeout=30)

    # The bridge itself restarts: bridgectl reconnects, resubscribes, announces the loss.
    stack.stop_bridge()
    sub.expect(r"reconnecting in", stream="stderr")
    stack.start_bridge()
    sub.expect(r"^subscribed channel news$", timeout=30)
    sub.expect(r"^gap channel news: bridge_reconnect$")
    code, out, err = stack.ctl("publish", "news", "after")
    check(code == 0, "publish after restart", out, err)
    sub.expect(r"^news #\d+: after$")
    sub.signal(signal.SIGINT)
    sub.expect_exit(0)


# The bridges of the durable case keep the history of channels orders*.
HISTORY_FLAG = "--history=orders*=1000/24h"


def durable(args):
    """A durable channel: publish prints each message's offset and epoch, subscribe shows
    them (a plain channel's lines stay as they were), history reads them back, and a
    subscribe --reconnect whose bridge goes away resumes where it was, on another replica
    and on the same bridge restarted: the messages published meanwhile come once each, in
    offset order, marked recovered, with no gap for the durable channel; and after the
    history was lost, a history_lost gap, then the new epoch."""
    stack = Stack(args.bridge, args.bridgectl, [HISTORY_FLAG])
    replica = None
    try:
        stack.start()
        replica, replica_addr = stack.start_replica()

        def publish(addr, channel, data):
            code, out, err = run([stack.bridgectl, "publish", channel, data, "--addr", addr])
            check(code == 0, f"publish {data} to {channel} at {addr}", code, out, err)
            return out.strip()

        out = publish(stack.addr, "orders", "o1")
        m = re.fullmatch(r"published to orders: 0 receivers \(offset=1 epoch=(\S+)\)", out)
        check(m is not None, "publish to a durable channel shows offset 1 and the epoch", out)
        epoch = m.group(1)
        # The same history through the replica: offsets count per channel, on every bridge.
        code, out, err = stack.ctl("publish", "--json", "orders", "o2")
        check(code == 0 and json.loads(out) == {"op": "published", "channel": "orders",
                                                "receivers": 0, "offset": 2, "epoch": epoch},
              "publish --json to a durable channel", out, err)
        check(publish(replica_addr, "orders", "o3") ==
              f"published to orders: 0 receivers (offset=3 epoch={epoch})", "replica's offset")

        # history: the latest, those after a position, a position of another epoch.
        code, out, err = stack.ctl("history", "orders", "--limit", "2")
        check(code == 0 and out.splitlines() == [
            f"history of orders: epoch {epoch}, latest offset 3, 2 messages",
            f"orders offset=2 epoch={epoch}: o2", f"orders offset=3 epoch={epoch}: o3"],
              "history --limit 2", code, out, err)
        code, out, err = stack.ctl("history", "--json", "orders", "--since", "1",
                                   "--epoch", epoch)
        check(code == 0 and json.loads(out) == {
            "op": "history", "channel": "orders", "epoch": epoch, "offset": 3,
            "messages": [{"offset": 2, "epoch": epoch, "data": "o2"},
                         {"offset": 3, "epoch": epoch, "data": "o3"}],
            "history_lost": False, "lost": 0}, "history --since --json", code, out, err)
        code, out, err = stack.ctl("history", "orders", "--since", "1", "--epoch", "gone")
        check(code == 0 and "gap channel orders: history_lost" in out.splitlines()[1:2] and
              out.splitlines()[2] == f"orders offset=1 epoch={epoch}: o1",
              "history from another epoch: history_lost, then from the oldest kept",
              code, out, err)
        code, out, err = stack.ctl("history", "news")
        check(code == 1 and "FAILED_PRECONDITION" in err, "history of a plain channel", code, err)

        # A subscriber given both bridges (gRPC's pick_first: the first that answers).
        both = f"ipv4:127.0.0.1:{stack.grpc_port},{replica_addr}"
        sub = stack.spawn([stack.bridgectl, "subscribe", "--reconnect", "--json", "orders",
                           "news", "--addr", both], name="subscriber")
        events = lambda: json.loads(sub.expect(r"^\{.*\}$", timeout=30).group(0))
        check({json.dumps(events(), sort_keys=True) for _ in range(2)} ==
              {json.dumps({"op": "subscribed", "channel": c}, sort_keys=True)
               for c in ("orders", "news")}, "both subscribed", sub.transcript())
        publish(stack.addr, "orders", "o4")
        publish(stack.addr, "news", "plain")
        check(events() == {"op": "message", "channel": "orders", "seq": 1, "offset": 4,
                           "epoch": epoch, "data": "o4"}, "a live durable message")
        check(events() == {"op": "message", "channel": "news", "seq": 1, "data": "plain"},
              "a plain message keeps its form")

        def resumed(sub, events, publish_addr, offsets, live):
            """Waits for the new stream; publishes `live` at `publish_addr`; returns the
            events up to that message's, checking each orders message came in order."""
            seen = []
            while True:
                e = events()
                seen.append(e)
                if e.get("channel") == "orders" and e.get("offset") == live:
                    break
                if e == {"op": "subscribed", "channel": "orders"}:
                    publish(publish_addr, "orders", f"o{live}")
            got = [(e["offset"], e.get("recovered", False)) for e in seen
                   if e["op"] == "message" and e["channel"] == "orders"]
            want = [(o, True) for o in offsets] + [(live, False)]
            check(got == want, f"orders after the reconnect: {got}, want {want}",
                  sub.transcript())
            check(not any(e["op"] == "gap" and e.get("channel") == "orders" for e in seen),
                  "a gap for the resumed channel", sub.transcript())
            return seen

        # The subscriber's bridge dies; what is published meanwhile (on the replica) comes
        # once each, recovered, from the replica the subscriber reconnects to. The
        # subscriber is stopped meanwhile, so that it cannot reconnect before the last of
        # them: each one is then certain to be recovered rather than live.
        sub.signal(signal.SIGSTOP)
        stack.bridge.stop()
        for i in (5, 6, 7):
            publish(replica_addr, "orders", f"o{i}")
        publish(replica_addr, "news", "lost")
        sub.signal(signal.SIGCONT)
        seen = resumed(sub, events, replica_addr, [5, 6, 7], 8)
        check({"op": "gap", "channel": "news", "reason": "bridge_reconnect", "dropped": 0}
              in seen, "the plain channel's bridge_reconnect gap", sub.transcript())
        check(all(e.get("data") != "lost" for e in seen), "a plain message crossed the outage")

        # The same bridge restarted: a subscriber of it alone resumes there.
        stack.start_bridge()
        one = stack.bridgectl_proc("subscribe", "--reconnect", "orders")
        one.expect(r"^subscribed channel orders$")
        publish(stack.addr, "orders", "o9")
        one.expect(rf"^orders #1 offset=9 epoch={re.escape(epoch)}: o9$")
        stack.stop_bridge()
        one.expect(r"reconnecting in", stream="stderr")
        for i in (10, 11):
            publish(replica_addr, "orders", f"o{i}")
        stack.start_bridge()
        # (The recovered messages may come before the new stream's confirmation or after.)
        one.expect(r"^orders offset=11 ", timeout=30)
        publish(stack.addr, "orders", "o12")
        one.expect(r"^orders #\d+ offset=12 ")
        lines = [l for l in one.lines["stdout"] if l.startswith("orders")]
        check([re.sub(r"^orders #\d+ offset=12 ", "orders #N offset=12 ", l) for l in lines] ==
              [f"orders #1 offset=9 epoch={epoch}: o9",
               f"orders offset=10 epoch={epoch} recovered: o10",
               f"orders offset=11 epoch={epoch} recovered: o11",
               f"orders #N offset=12 epoch={epoch}: o12"],
              "after the restart: 10 and 11 recovered, then 12 live, once each", one.transcript())
        check(not any(l.startswith("gap") for l in one.lines["stdout"]),
              "a gap after the restart", one.transcript())
        # And the first subscriber, on the replica all along, got them live, once each.
        for i in (9, 10, 11, 12):
            e = events()
            check(e["op"] == "message" and e["offset"] == i and e["data"] == f"o{i}" and
                  not e.get("recovered"), f"o{i} live on the replica", e, sub.transcript())
        sub.signal(signal.SIGINT)
        sub.expect_exit(0)

        # The history lost while the bridge is down (as a Redis restarted without
        # persistence would lose it): the resume from the old epoch gets history_lost,
        # then the new epoch's messages, and the next resume goes on in the new epoch.
        def restart_meanwhile(*messages):
            stack.stop_bridge()
            one.expect(r"reconnecting in", stream="stderr")
            return [publish(replica_addr, "orders", m) for m in messages]

        lost_at = len(one.lines["stdout"])
        code, out, err = run(["redis-cli", "-p", stack.redis.port, "FLUSHALL"])
        check(code == 0 and out.strip() == "OK", "FLUSHALL", code, out, err)
        out = restart_meanwhile("n1")[0]
        m = re.fullmatch(r"published to orders: \d+ receivers? \(offset=1 epoch=(\S+)\)", out)
        check(m is not None and m.group(1) != epoch, "a new epoch after FLUSHALL", out)
        epoch2 = m.group(1)
        stack.start_bridge()
        one.expect(r"^orders offset=1 .* recovered: n1$", timeout=30)
        restart_meanwhile("n2")
        stack.start_bridge()
        one.expect(r"^orders offset=2 .* recovered: n2$", timeout=30)
        lines = [l for l in one.lines["stdout"][lost_at:] if "orders" in l]
        check(lines == ["subscribed channel orders", "gap channel orders: history_lost",
                        f"orders offset=1 epoch={epoch2} recovered: n1",
                        "subscribed channel orders",
                        f"orders offset=2 epoch={epoch2} recovered: n2"],
              "resumes across a lost history", one.transcript())
        one.signal(signal.SIGINT)
        one.expect_exit(0)
    except TestFailure as e:
        raise TestFailure(f"{e}\n{stack.bridge.transcript() if stack.bridge else ''}"
                          f"\n{replica.transcript() if replica else ''}") from None
    finally:
        stack.close()


def access(args):
    """A bridge with an access file: the token of --token or BRIDGE_TOKEN goes with every
    call (a reconnection's too), and UNAUTHENTICATED and PERMISSION_DENIED end bridgectl
    with exit 1, --reconnect or not, without ever printing the token."""
    stack = Stack(args.bridge, args.bridgectl, access=ACCESS)

    def no_token_printed(out, err):
        for token in TOKENS:
            check(token not in out + err, "a token was printed", out, err)

    def refused(code_name, *cmd, env=None):
        code, out, err = stack.ctl(*cmd, env=env)
        check(code == 1 and f"bridgectl: {code_name}" in err and not out.strip(),
              f"{cmd} {env}: expected exit 1 with {code_name}", code, out, err)
        no_token_printed(out, err)
        return err

    try:
        stack.start()  # Its health --wait sends no token: Health needs none.

        # No token, or one the file does not know: UNAUTHENTICATED, for either call.
        # Without a token, bridgectl says where to give one; with a wrong one, it does not.
        for cmd in (["subscribe", "news"], ["publish", "prices.eu", "x"]):
            err = refused("UNAUTHENTICATED", *cmd, env=NO_TOKEN)
            check("--token TOKEN or $BRIDGE_TOKEN" in err, f"{cmd}: no hint of --token", err)
        err = refused("UNAUTHENTICATED", "subscribe", "news", "--token", UNKNOWN_TOKEN)
        check("$BRIDGE_TOKEN" not in err, "hint of --token when one was given", err)
        refused("UNAUTHENTICATED", "subscribe", "news", env={"BRIDGE_TOKEN": UNKNOWN_TOKEN})
        refused("UNAUTHENTICATED", "publish", "prices.eu", "x", "--token", UNKNOWN_TOKEN)

        # The reader's token, by --token: its channel and its pattern (literally one of its
        # globs) are confirmed.
        sub = stack.bridgectl_proc("subscribe", "--reconnect", "news", "--pattern", "prices.*",
                                   "--token", READER_TOKEN, env=NO_TOKEN)
        sub.expect(r"^subscribed channel news$")
        sub.expect(r"^subscribed pattern prices\.\*$")
        # The writer publishes to prices.*, by --token; news it may not, so Redis does.
        code, out, err = stack.ctl("publish", "prices.eu", "42", "--token", WRITER_TOKEN)
        check(code == 0 and out.strip() == "published to prices.eu: 1 receiver",
              "publish with the writer's token", code, out, err)
        sub.expect(r"^prices\.eu \(prices\.\*\) #1: 42$")
        stack.redis.publish_many("news", b"hello", 1)
        sub.expect(r"^news #1: hello$")

        # The same tokens from BRIDGE_TOKEN.
        env_sub = stack.bridgectl_proc("subscribe", "prices.us", env={"BRIDGE_TOKEN": READER_TOKEN})
        env_sub.expect(r"^subscribed channel prices\.us$")
        code, out, err = stack.ctl("publish", "prices.us", "7", env={"BRIDGE_TOKEN": WRITER_TOKEN})
        # (Redis counts Bridge twice here: by the channel and by the pattern.)
        check(code == 0 and out.startswith("published to prices.us: "),
              "publish with BRIDGE_TOKEN", code, out, err)
        env_sub.expect(r"^prices\.us #1: 7$")
        sub.expect(r"^prices\.us \(prices\.\*\) #2: 7$")
        # --token wins over BRIDGE_TOKEN: the reader may not publish, the writer may.
        code, out, err = stack.ctl("publish", "prices.us", "8", "--token", WRITER_TOKEN,
                                   env={"BRIDGE_TOKEN": READER_TOKEN})
        check(code == 0, "--token over BRIDGE_TOKEN", code, out, err)
        env_sub.expect(r"^prices\.us #2: 8$")
        # Health asks for no token, and one sent does no harm.
        for env in (NO_TOKEN, {"BRIDGE_TOKEN": READER_TOKEN}):
            code, out, err = stack.ctl("health", env=env)
            check(code == 0 and out.strip() == "SERVING", f"health with {env}", code, out, err)

        # Beyond what a token allows: PERMISSION_DENIED. A subscribe naming one channel it
        # may not have is refused whole; a pattern must be one of the globs literally.
        refused("PERMISSION_DENIED", "subscribe", "orders", "--token", READER_TOKEN)
        refused("PERMISSION_DENIED", "subscribe", "news", "orders", "--token", READER_TOKEN)
        refused("PERMISSION_DENIED", "subscribe", "--pattern", "prices.eu.*",
                "--token", READER_TOKEN)
        refused("PERMISSION_DENIED", "subscribe", "prices.eu", "--token", WRITER_TOKEN)
        refused("PERMISSION_DENIED", "publish", "news", "x", "--token", WRITER_TOKEN)
        refused("PERMISSION_DENIED", "publish", "prices.eu", "x", "--token", READER_TOKEN)

        # --reconnect does not retry them: they would be refused again, for ever. Exit 1 at
        # the first refusal, well before its first backoff (250ms) would have doubled twice.
        for code_name, token, channel in (("UNAUTHENTICATED", UNKNOWN_TOKEN, "news"),
                                          ("PERMISSION_DENIED", READER_TOKEN, "orders")):
            p = stack.bridgectl_proc("subscribe", "--reconnect", channel, "--token", token)
            p.expect(rf"^bridgectl: {code_name}", stream="stderr", timeout=5)
            p.expect_exit(1, timeout=5)
            check(not any("reconnecting" in l for l in p.lines["stderr"]),
                  f"--reconnect retried {code_name}", p.transcript())
            no_token_printed("\n".join(p.lines["stdout"]), "\n".join(p.lines["stderr"]))

        # A reconnection sends the token again: after a bridge restart the reader's stream
        # is confirmed anew (a stream without it would end in UNAUTHENTICATED, exit 1).
        stack.stop_bridge()
        sub.expect(r"reconnecting in", stream="stderr")
        stack.start_bridge()
        sub.expect(r"^subscribed channel news$", timeout=30)
        sub.expect(r"^subscribed pattern prices\.\*$")
        code, out, err = stack.ctl("publish", "prices.eu", "after", "--token", WRITER_TOKEN)
        check(code == 0, "publish after the restart", code, out, err)
        sub.expect(r"^prices\.eu \(prices\.\*\) #\d+: after$")
        sub.signal(signal.SIGINT)
        sub.expect_exit(0)
        no_token_printed("\n".join(sub.lines["stdout"]), "\n".join(sub.lines["stderr"]))
    except TestFailure as e:
        raise TestFailure(f"{e}\n{stack.bridge.transcript() if stack.bridge else ''}") from None
    finally:
        stack.close()


def slow_consumer(args):
    """A subscriber that stops reading gets a slow_consumer gap, and the numbers add up:
    every message published is either received or counted in a gap's `dropped`."""
    stack = Stack(args.bridge, args.bridgectl, ["--max_queued_messages=8"])
    try:
        stack.start()
        sub = stack.bridgectl_proc("subscribe", "--json", "flood")
        sub.expect(r'"op":"subscribed"')
        sub.signal(signal.SIGSTOP)
        # Large messages, so that the transport's buffers fill and Bridge's queue overflows.
        total, payload = 1000, b"x" * 65536
        stack.redis.publish_many("flood", payload, total)
        sub.signal(signal.SIGCONT)
        received, dropped, seq, announced = 0, 0, 0, False
        while seq < total:
            event = json.loads(sub.expect(r"^\{.*\}$", timeout=60).group(0))
            if event["op"] == "gap":
                check(event["reason"] == "slow_consumer" and event["dropped"] > 0, "gap", event)
                dropped += event["dropped"]
                announced = True
                continue
            check(event["op"] == "message", "unexpected event", event)
            check(event["seq"] == seq + 1 or announced,
                  f"seq {event['seq']} after {seq}, and no gap announced the loss")
            seq, announced = event["seq"], False
            received += 1
        check(dropped > 0, "no slow_consumer gap: the queue never overflowed")
        check(received + dropped == total,
              f"received {received} + dropped {dropped} != published {total}")
    finally:
        stack.close()


def publish_stdin_signal(args):
    """`bridgectl publish CHANNEL` waiting on a standard input that never ends: the first
    SIGTERM or SIGINT (Ctrl-C) ends it with exit 0, as the README promises, and publishes
    nothing. Standard input is a terminal (a pty), where bridgectl says it waits for the
    message: its stop signals are in place by then."""
    dead = f"127.0.0.1:{free_port()}"  # Never reached: the message never ends.
    for sig in (signal.SIGTERM, signal.SIGINT):
        master, slave = pty.openpty()
        proc = Proc([args.bridgectl, "publish", "ch", "--addr", dead], name="bridgectl",
                    stdin=slave)
        os.close(slave)
        try:
            proc.expect(r"type the message, then Ctrl-D", stream="stderr")
            proc.signal(sig)
            # Well under TIMEOUT: the signal ends the read at once, or not at all.
            proc.expect_exit(0, timeout=5)
            check(not proc.lines["stdout"] and len(proc.lines["stderr"]) == 1,
                  f"output after {sig.name}", proc.transcript())
        finally:
            proc.stop()
            os.close(master)
    # The input read to its end still publishes it (here: to nobody, so UNAVAILABLE).
    code, _, err = run([args.bridgectl, "publish", "ch", "--addr", dead, "--timeout", "2s"],
                       stdin_bytes=b"x" * 200000)
    check(code == 1 and "UNAVAILABLE" in err, "publish of a long stdin", code, err)


CASES = {
    "subscribe_publish": subscribe_publish,
    "json_output": json_output,
    "health": health,
    "errors": errors,
    "reconnect": reconnect,
    "slow_consumer": slow_consumer,
    "publish_stdin_signal": publish_stdin_signal,
    "access": access,
    "durable": durable,
}

if __name__ == "__main__":
    sys.exit(main(CASES, sys.argv[1:]))
