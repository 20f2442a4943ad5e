// The Node.js WebSocket server most teams write first: npm `ws` + `redis`, one Redis
// subscriber client, and one listener per socket that serialises and sends each message.
// It is a baseline for bench/run, kept deliberately in the common style (no shared
// encoding, no backpressure, no bounded queues): do not "fix" it.
//
// Usage: node ws_server.js --port 8090 --redis redis://127.0.0.1:6379
'use strict';
const { WebSocketServer } = require('ws');
const { createClient } = require('redis');

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : def;
}
const port = Number(arg('port', 8090));
const redisUrl = arg('redis', 'redis://127.0.0.1:6379');

async function main() {
  const subscriber = createClient({ url: redisUrl });
  subscriber.on('error', (err) => console.error('redis:', err.message));
  await subscriber.connect();
  subscriber.setMaxListeners(0);
  const seqs = new Map();

  const wss = new WebSocketServer({ port, host: '127.0.0.1', path: '/ws' });
  wss.on('connection', (ws) => {
    const mine = [];
    ws.on('message', async (raw) => {
      let req;
      try {
        req = JSON.parse(raw.toString());
      } catch (e) {
        ws.send(JSON.stringify({ op: 'error', code: 'bad_json', message: e.message }));
        return;
      }
      if (req.op !== 'subscribe') return;
      for (const channel of req.channels || []) {
        // One more listener per socket on the one subscription.
        const listener = (message) => {
          const seq = (seqs.get(channel) || 0) + 1;
          seqs.set(channel, seq);
          ws.send(JSON.stringify({ op: 'message', channel, seq, data: message }));
        };
        mine.push([channel, listener]);
        await subscriber.subscribe(channel, listener);
        ws.send(JSON.stringify({ op: 'subscribed', channel }));
      }
    });
    ws.on('close', () => {
      for (const [channel, listener] of mine) {
        subscriber.unsubscribe(channel, listener).catch(() => {});
      }
    });
    ws.on('error', () => {});
  });
  wss.on('listening', () => console.log(`ws baseline listening on 127.0.0.1:${port}`));
  const stop = () => {
    wss.close();
    subscriber.quit().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
