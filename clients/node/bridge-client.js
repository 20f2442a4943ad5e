#!/usr/bin/env node
// Bridge from Node.js: subscribe to channels and patterns, or publish a message.
//
//   node bridge-client.js subscribe news --pattern 'news.*'
//   node bridge-client.js publish news 'hello'
//
// Loads the contract straight from proto/bridge/v1/bridge.proto (no generated code).
// BRIDGE_ADDR is the address (default localhost:50051); BRIDGE_TOKEN, when set, is sent as
// `authorization: Bearer <token>` with every call, for a Bridge with an access file.
// The subscriber calls SubscribeBatched (Subscribe when the server answers UNIMPLEMENTED:
// a Bridge older than the method), prints one line per event, in bridgectl's human form,
// reconnects with backoff when the stream is lost (resuming each durable channel after the
// last message it printed of it), and exits 0 on Ctrl-C or SIGTERM.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO = path.join(__dirname, '..', '..', 'proto', 'bridge', 'v1', 'bridge.proto');
const definition = protoLoader.loadSync(PROTO, {
  longs: String, // seq and offset are uint64s: keep every digit
  defaults: true,
  oneofs: true, // event.kind names the field that is set
});
const { Bridge } = grpc.loadPackageDefinition(definition).bridge.v1;

// Errors about the request itself: a new attempt would fail the same way.
const FATAL = new Set([
  grpc.status.INVALID_ARGUMENT, grpc.status.PERMISSION_DENIED, grpc.status.UNAUTHENTICATED,
  grpc.status.UNIMPLEMENTED, grpc.status.FAILED_PRECONDITION, grpc.status.NOT_FOUND,
]);
// A Bridge with an access file wants the token in every call's metadata (plaintext
// gRPC: call credentials would need TLS). Checked first: grpc-js would quote a bad one.
const TOKEN = process.env.BRIDGE_TOKEN || '';
function callMetadata() {
  const metadata = new grpc.Metadata();
  if (TOKEN) metadata.set('authorization', `Bearer ${TOKEN}`);
  return metadata;
}
const codeName = (code) => Object.keys(grpc.status).find((k) => grpc.status[k] === code);

// One terminal line: UTF-8 text as it is, control characters and backslashes escaped.
// (Bytes that are not UTF-8 show as U+FFFD here; use payload itself for binary data.)
function printable(buffer) {
  const escapes = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };
  return buffer.toString('utf8').replace(/[\x00-\x1f\x7f\\]/g, (c) =>
    escapes[c] || `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function describe(event) {
  switch (event.kind) {
    case 'subscribed': {
      const s = event.subscribed;
      return `subscribed ${s.target} ${s[s.target]}`;
    }
    case 'message': {
      const m = event.message;
      const via = m.pattern ? ` (${m.pattern})` : '';
      const durable = m.offset !== '0';
      // A message a resume recovered has no seq (0) of this stream.
      const seq = !durable || m.seq !== '0' ? ` #${m.seq}` : '';
      const at = durable ? ` offset=${m.offset} epoch=${m.epoch}${m.recovered ? ' recovered' : ''}`
                         : '';
      return `${m.channel}${via}${seq}${at}: ${printable(m.payload)}`;
    }
    case 'gap': {
      const g = event.gap;
      const target = g.pattern ? `pattern ${g.pattern}` : `channel ${g.channel}`;
      const dropped = Number(g.dropped) > 0 ? `, ${g.dropped} dropped` : '';
      return `gap ${target}: ${g.reason}${dropped}`;
    }
    default:
      return 'unknown event';
  }
}

// Where each durable channel's stream left off (channel -> {offset, epoch}), so that the
// stream after a lost one asks to resume there (SubscribeRequest.resume) and misses
// nothing, on the same Bridge or another replica. A pattern's match is left out: resuming
// it would subscribe its channel by name.
class Positions {
  constructor() {
    this.byChannel = new Map();
  }

  observe(m) {
    if (m.offset === '0' || m.pattern) return;
    const known = this.byChannel.get(m.channel);
    // Offsets of one epoch only move forward; a new epoch (history lost) replaces them.
    if (known && known.epoch === m.epoch && BigInt(known.offset) >= BigInt(m.offset)) return;
    this.byChannel.set(m.channel, { offset: m.offset, epoch: m.epoch });
  }

  // The request of a new stream: each channel with a position is resumed (a resume key
  // is subscribed too), the others subscribed.
  request(channels, patterns) {
    const resume = Object.create(null); // a channel may be called "__proto__"
    for (const c of channels) {
      if (this.byChannel.has(c)) resume[c] = this.byChannel.get(c);
    }
    return { channels: channels.filter((c) => !Object.hasOwn(resume, c)), patterns, resume };
  }
}

function subscribe(client, channels, patterns) {
  let call = null;
  let stopping = false;
  let delay = 500;
  let timer = null;
  // Subscriptions an earlier stream confirmed: when a new stream confirms one again,
  // what was published in between is lost, and the user hears of it.
  const confirmed = new Set();
  const positions = new Positions();
  // Until the server says it has no SubscribeBatched.
  let batched = true;
  const stop = () => {
    stopping = true;
    clearTimeout(timer);
    if (call) call.cancel(); // ends with CANCELLED, handled below
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  const open = () => {
    const request = positions.request(channels, patterns);
    call = batched ? client.subscribeBatched(request, callMetadata())
                   : client.subscribe(request, callMetadata());
    let anyEvent = false;
    const handle = (event) => {
      anyEvent = true;
      console.log(describe(event));
      if (event.kind === 'subscribed') {
        delay = 500; // the connection proved good
        const s = event.subscribed;
        const key = `${s.target} ${s[s.target]}`;
        // A resumed channel loses nothing: the server recovers what it missed, or says
        // with a history_lost gap what it cannot.
        const resumed = s.target === 'channel' && Object.hasOwn(request.resume, s.channel);
        if (confirmed.has(key) && !resumed) console.log(`gap ${key}: bridge_reconnect`);
        confirmed.add(key);
      } else if (event.kind === 'message') {
        positions.observe(event.message);
      }
    };
    // A batch is the events queued for the stream when the server wrote it, in order.
    call.on('data', batched ? (batch) => batch.events.forEach(handle) : handle);
    call.on('error', () => {}); // reported by 'status', which every call ends with
    call.on('status', (status) => {
      if (stopping) return;
      if (batched && status.code === grpc.status.UNIMPLEMENTED && !anyEvent) {
        batched = false; // an older server: the same events, one message each
        call = null;
        open();
        return;
      }
      if (FATAL.has(status.code)) {
        console.error(`error: ${codeName(status.code)}: ${status.details}`);
        process.exitCode = 1;
        return;
      }
      retry(status.code === grpc.status.OK ? 'stream ended'
                                             : `${codeName(status.code)}: ${status.details}`);
    });
  };
  const retry = (why) => {
    const wait = delay * (0.8 + 0.4 * Math.random());
    console.error(`${why}; reconnecting in ${(wait / 1000).toFixed(1)}s`);
    delay = Math.min(delay * 2, 30000);
    call = null;
    timer = setTimeout(open, wait);
  };
  open();
}

function publish(client, channel, payload) {
  const options = { deadline: Date.now() + 10000 };
  client.publish({ channel, payload }, callMetadata(), options, (err, reply) => {
    if (err) {
      console.error(`error: ${codeName(err.code)}: ${err.details}`);
      process.exitCode = 1;
    } else {
      const noun = Number(reply.receivers) === 1 ? 'receiver' : 'receivers';
      const at = reply.offset !== '0' ? ` (offset=${reply.offset} epoch=${reply.epoch})` : '';
      console.log(`published to ${channel}: ${reply.receivers} ${noun}${at}`);
    }
    client.close();
  });
}

function main(argv) {
  const usage = 'usage: bridge-client.js [--addr HOST:PORT] subscribe CHANNEL... [--pattern P]...\n' +
                '       bridge-client.js [--addr HOST:PORT] publish CHANNEL [MESSAGE]\n' +
                'environment: BRIDGE_ADDR (default address), BRIDGE_TOKEN (access token)';
  let addr = process.env.BRIDGE_ADDR || 'localhost:50051';
  if (TOKEN && !/^[!-~]+$/.test(TOKEN)) {
    console.error('error: BRIDGE_TOKEN: only printable ASCII, no spaces');
    process.exitCode = 2;
    return;
  }
  const positional = [];
  const patterns = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--addr') addr = argv[++i];
    else if (arg.startsWith('--addr=')) addr = arg.slice('--addr='.length);
    else if (arg === '--pattern' || arg === '-p') patterns.push(argv[++i]);
    else if (arg === '-h' || arg === '--help') return console.log(usage);
    else positional.push(arg);
  }
  const [command, ...rest] = positional;
  const client = new Bridge(addr, grpc.credentials.createInsecure());
  if (command === 'subscribe' && (rest.length > 0 || patterns.length > 0)) {
    subscribe(client, rest, patterns);
  } else if (command === 'publish' && rest.length === 2) {
    publish(client, rest[0], Buffer.from(rest[1]));
  } else if (command === 'publish' && rest.length === 1) {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => publish(client, rest[0], Buffer.concat(chunks)));
  } else {
    console.error(usage);
    process.exitCode = 2;
    client.close();
  }
}

if (require.main === module) main(process.argv.slice(2));
// For tests, and for copying into a service.
module.exports = { Positions, describe };
