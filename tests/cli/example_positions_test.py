#!/usr/bin/env python3
"""The Python example's bookkeeping of durable positions (Positions) and its output form for
durable messages (describe), without a server. Its generated modules go to a temporary
directory.

    /usr/bin/python3 tests/cli/example_positions_test.py
"""

import os
import pathlib
import sys
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STUBS = tempfile.TemporaryDirectory(prefix="bridge-py-stubs-")
os.environ["BRIDGE_PY_STUBS"] = STUBS.name  # read when the example is imported
sys.dont_write_bytecode = True
sys.path.insert(0, str(ROOT / "clients" / "python"))
import bridge_client  # pylint: disable=wrong-import-position

pb = bridge_client.pb


def message(channel, offset, epoch="e1", pattern="", **extra):
    return pb.Message(channel=channel, pattern=pattern, offset=offset, epoch=epoch, seq=1,
                      payload=b"x", **extra)


class PositionsTest(unittest.TestCase):
    def test_a_durable_channel_seen_is_resumed_the_others_subscribed(self):
        p = bridge_client.Positions()
        p.observe(message("orders", 3))
        p.observe(message("news", 0, ""))  # not durable
        r = p.request(["orders", "news"], ["x.*"])
        self.assertEqual(list(r.channels), ["news"])
        self.assertEqual(list(r.patterns), ["x.*"])
        self.assertEqual(dict(r.resume), {"orders": pb.StreamPosition(offset=3, epoch="e1")})

    def test_forward_within_an_epoch_a_new_epoch_replaces_no_pattern_matches(self):
        p = bridge_client.Positions()
        p.observe(message("orders", 10))
        p.observe(message("orders", 9))  # older: kept at 10
        self.assertEqual(p.request(["orders"], []).resume["orders"].offset, 10)
        p.observe(message("orders", 1, "e2"))
        self.assertEqual(p.request(["orders"], []).resume["orders"],
                         pb.StreamPosition(offset=1, epoch="e2"))
        p.observe(message("orders.eu", 4, pattern="orders.*"))
        self.assertEqual(list(p.request(["orders.eu"], []).channels), ["orders.eu"])

    def test_describe_shows_offsets_of_durable_messages_plain_ones_as_before(self):
        def event(m):
            return pb.Event(message=m)
        self.assertEqual(bridge_client.describe(event(message("news", 0, ""))), "news #1: x")
        self.assertEqual(bridge_client.describe(event(message("orders", 7))),
                         "orders #1 offset=7 epoch=e1: x")
        recovered = message("orders", 8, recovered=True)
        recovered.seq = 0
        self.assertEqual(bridge_client.describe(event(recovered)),
                         "orders offset=8 epoch=e1 recovered: x")


if __name__ == "__main__":
    try:
        unittest.main()
    finally:
        STUBS.cleanup()
