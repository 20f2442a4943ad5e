// A Node.js gRPC bridge written the straightforward way: @grpc/grpc-js + ioredis, the
// same bridge.v1 contract as Bridge, one ioredis subscriber connection, and for each
// Subscribe stream one 'message' listener that builds and writes an Event. A baseline
// for bench/run, kept in the common style (per-stream serialisation, no backpressure).
//
// Usage: node grpc_server.js --port 50061 --redis redis://127.0.0.1:6379 --proto DIR
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const Redis = require('ioredis');

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : def;
}
const port = Number(arg('port', 50061));
const redisUrl = arg('redis', 'redis://127.0.0.1:6379');
const protoDir = arg('proto', path.join(__dirname, '..', '..', 'proto'));

const def = protoLoader.loadSync(path.join(protoDir, 'bridge/v1/bridge.proto'), {
  includeDirs: [protoDir],
  longs: Number,
  defaults: true,
});
const pkg = grpc.loadPackageDefinition(def).bridge.v1;

const sub = new Redis(redisUrl);
const pub = new Redis(redisUrl);
sub.setMaxListeners(0);
const seqs = new Map();
sub.on('messageBuffer', (channel) => {
  const name = channel.toString();
  seqs.set(name, (seqs.get(name) || 0) + 1);
});

function subscribe(call) {
  const channels = call.request.channels || [];
  const onMessage = (channel, payload) => {
    const name = channel.toString();
    if (!channels.includes(name)) return;
    call.write({ message: { channel: name, pattern: '', payload, seq: seqs.get(name) } });
  };
  sub.on('messageBuffer', onMessage);
  Promise.all(channels.map((c) => sub.subscribe(c))).then(() => {
    for (const c of channels) call.write({ subscribed: { channel: c } });
  });
  const done = () => sub.removeListener('messageBuffer', onMessage);
  call.on('cancelled', done);
  call.on('close', done);
}

function publish(call, callback) {
  pub.publish(call.request.channel, call.request.payload).then(
    (receivers) => callback(null, { receivers }),
    (err) => callback({ code: grpc.status.UNAVAILABLE, message: err.message }));
}

const server = new grpc.Server();
server.addService(pkg.Bridge.service, { subscribe, publish });
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(`grpc baseline listening on 127.0.0.1:${port}`);
});
const stop = () => {
  server.forceShutdown();
  sub.disconnect();
  pub.disconnect();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
