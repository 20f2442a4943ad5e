// The Node.js example's bookkeeping of durable positions (Positions) and its output form
// for durable messages (describe), without a server.
//
//   node --test tests/cli/example_positions_test.js
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');

const { Positions, describe } = require(
  path.join(__dirname, '..', '..', 'clients', 'node', 'bridge-client.js'));

// As grpc-js hands them over with the example's loader options (uint64 as strings).
const message = (channel, offset, epoch = 'e1', pattern = '') =>
  ({ channel, pattern, offset: String(offset), epoch, seq: '1', recovered: false });

test('a durable channel seen is resumed, the others subscribed', () => {
  const p = new Positions();
  p.observe(message('orders', 3));
  p.observe(message('news', 0, '')); // not durable
  const r = p.request(['orders', 'news'], ['x.*']);
  assert.deepEqual(r.channels, ['news']);
  assert.deepEqual(r.patterns, ['x.*']);
  assert.deepEqual({ ...r.resume }, { orders: { offset: '3', epoch: 'e1' } });
});

test('forward within an epoch, a new epoch replaces, no pattern matches', () => {
  const p = new Positions();
  p.observe(message('orders', 10));
  p.observe(message('orders', 9)); // older: kept at 10
  assert.equal(p.request(['orders'], []).resume.orders.offset, '10');
  p.observe(message('orders', 1, 'e2'));
  assert.deepEqual({ ...p.request(['orders'], []).resume.orders }, { offset: '1', epoch: 'e2' });
  p.observe(message('orders.eu', 4, 'e1', 'orders.*'));
  assert.deepEqual(p.request(['orders.eu'], []).channels, ['orders.eu']);
});

test('describe shows offsets of durable messages, plain ones as before', () => {
  const event = (m) => ({ kind: 'message', message: { payload: Buffer.from('x'), ...m } });
  assert.equal(describe(event(message('news', 0, ''))), 'news #1: x');
  assert.equal(describe(event(message('orders', 7))), 'orders #1 offset=7 epoch=e1: x');
  assert.equal(describe(event({ ...message('orders', 8), seq: '0', recovered: true })),
               'orders offset=8 epoch=e1 recovered: x');
});
