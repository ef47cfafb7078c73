// The clients of bench/ws.sh: N SIP over WebSocket (RFC 7118) flows
// from one Node process, written as browsers' JsSIP writes them (Via
// SIP/2.0/WSS with an .invalid host, Contact ;transport=ws, ;ob), but
// with SIP text made here so that thousands fit in one process.
//
//   node bench/ws_load.mjs --url wss://127.0.0.1:15502 --n 2000 \
//       --messages 20000 --window 100
//
// 1. N WebSockets each REGISTER user bN (no digest: the benchmark
//    servers do not challenge); prints "registered N <seconds>" and
//    waits for a line on stdin (the caller measures memory meanwhile);
// 2. MESSAGE from client i to user b(i+1), WINDOW outstanding at a
//    time, MESSAGES in all, every receiver answering 200; prints
//    "messages <answered 200> <failed> <seconds> <per second> <our CPU
//    ms>" (this process is the other end of every message: when its CPU
//    is the elapsed time, the clients are the bottleneck);
// 3. waits for a line on stdin, closes everything and exits.

import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

// ws from the tests' npm packages (make js-deps)
const WS = createRequire(new URL('../t/js/package.json',
    import.meta.url))('ws');

const args = { n: 2000, messages: 20000, window: 100, domain: 'example.com',
    concurrency: 100 };

for (let i = 2; i < process.argv.length; i += 2) {
    args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}

const N = +args.n;
const host = (i) => `b${i}.invalid`;
const rl = createInterface({ input: process.stdin });
const lines = [];
let waiter = null;

rl.on('line', (l) => {
    if (waiter) {
        const w = waiter;
        waiter = null;
        w(l);
    } else {
        lines.push(l);
    }
});

function nextLine() {
    return lines.length ? Promise.resolve(lines.shift())
                        : new Promise((r) => { waiter = r; });
}

function tag() {
    return randomBytes(6).toString('hex');
}

function header(msg, name) {
    const m = msg.match(new RegExp(`^${name}:[ \\t]*(.*)$`, 'mi'));
    return m ? m[1].replace(/\r$/, '') : '';
}

const clients = [];
const pending = new Map();

function request(c, method, uri, to, extra, body) {
    const branch = 'z9hG4bK' + tag();
    const callId = tag() + '@' + host(c.i);
    const msg = `${method} ${uri} SIP/2.0\r\n`
        + `Via: SIP/2.0/WSS ${host(c.i)};branch=${branch}\r\n`
        + 'Max-Forwards: 70\r\n'
        + `From: <sip:b${c.i}@${args.domain}>;tag=${tag()}\r\n`
        + `To: <${to}>\r\n`
        + `Call-ID: ${callId}\r\n`
        + `CSeq: ${++c.cseq} ${method}\r\n`
        + extra
        + (body ? 'Content-Type: text/plain\r\n' : '')
        + `Content-Length: ${Buffer.byteLength(body || '')}\r\n\r\n`
        + (body || '');

    return new Promise((resolve) => {
        pending.set(branch, resolve);
        c.ws.send(msg);
    });
}

function onMessage(c, data) {
    const msg = data.toString();

    if (msg.startsWith('SIP/2.0 ')) {
        const code = +msg.slice(8, 11);
        const via = header(msg, 'Via') || header(msg, 'v');
        const b = via.match(/branch=([^;,\s]+)/);

        if (code >= 200 && b && pending.has(b[1])) {
            const r = pending.get(b[1]);
            pending.delete(b[1]);
            r(code);
        }
        return;
    }

    // a request: answer 200 (MESSAGE, OPTIONS), nothing for ACK
    if (msg.startsWith('ACK ')) {
        return;
    }

    const head = msg.split('\r\n\r\n')[0].split('\r\n');
    const keep = head.filter((l) =>
        /^(via|v|from|f|to|t|call-id|i|cseq|record-route)[ \t]*:/i.test(l))
        .map((l) => /^(to|t)[ \t]*:/i.test(l) && !/;tag=/.test(l)
            ? l + ';tag=' + tag() : l);

    c.ws.send('SIP/2.0 200 OK\r\n' + keep.join('\r\n')
        + '\r\nContent-Length: 0\r\n\r\n');
    c.received++;
}

function open(i) {
    return new Promise((resolve, reject) => {
        const ws = new WS(args.url, 'sip', { rejectUnauthorized: false,
            perMessageDeflate: false });
        const c = { i, ws, cseq: 0, received: 0 };

        ws.on('open', () => resolve(c));
        ws.on('error', reject);
        ws.on('message', (d) => onMessage(c, d));
        ws.on('close', () => { c.closed = true; });
    });
}

async function register(i) {
    const c = await open(i);
    const code = await Promise.race([
        request(c, 'REGISTER', `sip:${args.domain}`,
            `sip:b${i}@${args.domain}`,
            `Contact: <sip:b${i}@${host(i)};transport=ws;ob>\r\n`
            + 'Expires: 3600\r\n'),
        new Promise((r) => setTimeout(() => r('timeout'), 10000)),
    ]);

    if (code !== 200) {
        throw new Error(`b${i}: REGISTER answered ${code}`);
    }

    clients[i] = c;
}

let t0 = Date.now();
let next = 0;

await Promise.all(Array.from({ length: +args.concurrency }, async () => {
    while (next < N) {
        await register(next++);
    }
}));

console.log(`registered ${N} ${((Date.now() - t0) / 1000).toFixed(2)}`);
await nextLine();

const total = +args.messages;
let sent = 0;
let ok = 0;
let failed = 0;
const codes = {};

t0 = Date.now();
const cpu0 = process.cpuUsage();

await Promise.all(Array.from({ length: +args.window }, async (_, w) => {
    while (sent < total) {
        const i = (sent++ * 7 + w) % N;
        const to = `sip:b${(i + 1) % N}@${args.domain}`;
        const code = await Promise.race([
            request(clients[i], 'MESSAGE', to, to, '', `m${sent}`),
            new Promise((r) => setTimeout(() => r('timeout'), 10000)),
        ]);

        if (code === 200) {
            ok++;
        } else {
            failed++;
            codes[code] = (codes[code] || 0) + 1;
        }
    }
}));

const secs = (Date.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(`messages ${ok} ${failed} ${secs.toFixed(2)}`
    + ` ${(ok / secs).toFixed(0)}`
    + ` ${((cpu.user + cpu.system) / 1000).toFixed(0)}`);

if (failed) {
    console.error('failed MESSAGE answers: ' + JSON.stringify(codes));
}

await nextLine();

for (const c of clients) {
    c.ws.terminate();
}

process.exit(0);
