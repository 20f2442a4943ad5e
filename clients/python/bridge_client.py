#!/usr/bin/python3
"""Bridge from Python: subscribe to channels and patterns, or publish a message.

    python3 bridge_client.py subscribe news --pattern 'news.*'
    python3 bridge_client.py publish news 'hello'

Uses Debian's python3-grpcio and python3-protobuf. The generated modules come from
generate_stubs.sh; this script runs it on first use when they are missing (into
build/python, or $BRIDGE_PY_STUBS).

The subscriber calls SubscribeBatched (Subscribe when the server answers UNIMPLEMENTED: a
Bridge older than the method), prints one line per event, in bridgectl's human form,
reconnects with backoff when the stream is lost (resuming each durable channel after the
last message it printed of it), and exits 0 on Ctrl-C or SIGTERM.

BRIDGE_ADDR is the address (default localhost:50051); BRIDGE_TOKEN, when set, is sent as
`authorization: Bearer <token>` with every call, for a Bridge with an access file.
"""

import argparse
import os
import pathlib
import random
import signal
import subprocess
import sys
import threading

import grpc

HERE = pathlib.Path(__file__).resolve().parent
STUBS = pathlib.Path(os.environ.get("BRIDGE_PY_STUBS", HERE.parent.parent / "build" / "python"))


def load_stubs():
    stub = STUBS / "bridge" / "v1" / "bridge_pb2_grpc.py"
    proto = HERE.parent.parent / "proto" / "bridge" / "v1" / "bridge.proto"
    # Made again when the contract changed since (a method added).
    if not stub.exists() or stub.stat().st_mtime < proto.stat().st_mtime:
        subprocess.run([str(HERE / "generate_stubs.sh"), str(STUBS)], check=True)
    sys.path.insert(0, str(STUBS))
    from bridge.v1 import bridge_pb2, bridge_pb2_grpc  # pylint: disable=import-outside-toplevel

    return bridge_pb2, bridge_pb2_grpc


pb, pb_grpc = load_stubs()

# Errors about the request itself: a new attempt would fail the same way.
FATAL = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
}

# A Bridge with an access file wants the token in every call's metadata (plaintext gRPC:
# call credentials would need TLS). main() checks it: gRPC sends printable ASCII only.
TOKEN = os.environ.get("BRIDGE_TOKEN", "")
METADATA = [("authorization", f"Bearer {TOKEN}")] if TOKEN else []

ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def printable(data: bytes) -> str:
    """One terminal line, as bridgectl prints it: UTF-8 text as it is; control characters,
    backslashes and bytes that are not UTF-8 escaped."""
    out = []
    for c in data.decode("utf-8", errors="surrogateescape"):
        code = ord(c)
        if c in ESCAPES:
            out.append(ESCAPES[c])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte surrogateescape could not decode
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(c)
    return "".join(out)


def target(subscribed) -> str:
    """"channel NAME" or "pattern NAME": what a Subscribed event confirmed."""
    which = subscribed.WhichOneof("target")
    return f"{which} {getattr(subscribed, which)}"


def describe(event) -> str:
    kind = event.WhichOneof("kind")
    if kind == "subscribed":
        return f"subscribed {target(event.subscribed)}"
    if kind == "message":
        m = event.message
        via = f" ({m.pattern})" if m.pattern else ""
        # A message a resume recovered has no seq (0) of this stream.
        seq = f" #{m.seq}" if not m.offset or m.seq else ""
        at = ""
        if m.offset:
            at = f" offset={m.offset} epoch={m.epoch}" + (" recovered" if m.recovered else "")
        return f"{m.channel}{via}{seq}{at}: {printable(m.payload)}"
    if kind == "gap":
        g = event.gap
        what = f"pattern {g.pattern}" if g.pattern else f"channel {g.channel}"
        dropped = f", {g.dropped} dropped" if g.dropped else ""
        return f"gap {what}: {g.reason}{dropped}"
    return "unknown event"


class Positions:
    """Where each durable channel's stream left off (channel -> (offset, epoch)), so that
    the stream after a lost one asks to resume there (SubscribeRequest.resume) and misses
    nothing, on the same Bridge or another replica. A pattern's match is left out:
    resuming it would subscribe its channel by name."""

    def __init__(self):
        self.by_channel = {}

    def observe(self, m):
        if not m.offset or m.pattern:
            return
        known = self.by_channel.get(m.channel)
        # Offsets of one epoch only move forward; a new epoch (history lost) replaces them.
        if known and known[1] == m.epoch and known[0] >= m.offset:
            return
        self.by_channel[m.channel] = (m.offset, m.epoch)

    def request(self, channels, patterns):
        """The request of a new stream: each channel with a position is resumed (a resume
        key is subscribed too), the others subscribed."""
        request = pb.SubscribeRequest(patterns=patterns)
        for channel in channels:
            if channel in self.by_channel:
                offset, epoch = self.by_channel[channel]
                request.resume[channel].offset = offset
                request.resume[channel].epoch = epoch
            else:
                request.channels.append(channel)
        return request


class Subscriber:
    """One SubscribeBatched (or Subscribe) stream at a time, replaced with backoff when it
    is lost."""

    def __init__(self, stub, channels, patterns):
        self.stub = stub
        self.channels = channels
        self.patterns = patterns
        self.positions = Positions()
        self.request = None
        self.stopping = threading.Event()
        self.call = None
        # Subscriptions an earlier stream confirmed: when a new stream confirms one again,
        # what was published in between is lost, and the user hears of it.
        self.confirmed = set()
        # Until the server says it has no SubscribeBatched.
        self.batched = True

    def events(self):
        """The events of one new stream, one by one: a batch is the events queued for the
        stream when the server wrote it, in order."""
        self.request = self.positions.request(self.channels, self.patterns)
        if self.batched:
            self.call = self.stub.SubscribeBatched(self.request, metadata=METADATA)
            for batch in self.call:
                yield from batch.events
        else:
            self.call = self.stub.Subscribe(self.request, metadata=METADATA)
            yield from self.call

    def stop(self, *_):
        self.stopping.set()
        if self.call is not None:
            self.call.cancel()

    def run(self) -> int:
        delay = 0.5
        while not self.stopping.is_set():
            any_event = False
            try:
                for event in self.events():
                    any_event = True
                    print(describe(event), flush=True)
                    kind = event.WhichOneof("kind")
                    if kind == "subscribed":
                        delay = 0.5  # the connection proved good
                        what = target(event.subscribed)
                        # A resumed channel loses nothing: the server recovers what it
                        # missed, or says with a history_lost gap what it cannot.
                        resumed = (event.subscribed.WhichOneof("target") == "channel"
                                   and event.subscribed.channel in self.request.resume)
                        if what in self.confirmed and not resumed:
                            print(f"gap {what}: bridge_reconnect", flush=True)
                        self.confirmed.add(what)
                    elif kind == "message":
                        self.positions.observe(event.message)
                status = "stream ended"
            except grpc.RpcError as err:
                if self.stopping.is_set():
                    break
                if self.batched and err.code() == grpc.StatusCode.UNIMPLEMENTED and not any_event:
                    self.batched = False  # an older server: the same events, one message each
                    continue
                if err.code() in FATAL:
                    print(f"error: {err.code().name}: {err.details()}", file=sys.stderr)
                    return 1
                status = f"{err.code().name}: {err.details()}"
            wait = delay * random.uniform(0.8, 1.2)
            print(f"{status}; reconnecting in {wait:.1f}s", file=sys.stderr, flush=True)
            self.stopping.wait(wait)
            delay = min(delay * 2, 30)
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="environment: BRIDGE_ADDR (default address), BRIDGE_TOKEN (access token)")
    parser.add_argument("--addr", default=os.environ.get("BRIDGE_ADDR", "localhost:50051"))
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("subscribe")
    sub.add_argument("channels", nargs="*")
    sub.add_argument("--pattern", "-p", action="append", default=[])
    pub = commands.add_parser("publish")
    pub.add_argument("channel")
    pub.add_argument("message", nargs="?", help="default: standard input")
    args = parser.parse_args()
    if TOKEN and not all("!" <= c <= "~" for c in TOKEN):
        parser.error("BRIDGE_TOKEN: only printable ASCII, no spaces")

    with grpc.insecure_channel(args.addr) as channel:
        stub = pb_grpc.BridgeStub(channel)
        if args.command == "publish":
            payload = args.message.encode() if args.message is not None else sys.stdin.buffer.read()
            try:
                reply = stub.Publish(pb.PublishRequest(channel=args.channel, payload=payload),
                                     timeout=10, metadata=METADATA)
            except grpc.RpcError as err:
                print(f"error: {err.code().name}: {err.details()}", file=sys.stderr)
                return 1
            noun = "receiver" if reply.receivers == 1 else "receivers"
            at = f" (offset={reply.offset} epoch={reply.epoch})" if reply.offset else ""
            print(f"published to {args.channel}: {reply.receivers} {noun}{at}", flush=True)
            return 0
        if not args.channels and not args.pattern:
            parser.error("subscribe needs a channel or --pattern")
        subscriber = Subscriber(stub, args.channels, args.pattern)
        signal.signal(signal.SIGINT, subscriber.stop)
        signal.signal(signal.SIGTERM, subscriber.stop)
        return subscriber.run()


if __name__ == "__main__":
    sys.exit(main())
