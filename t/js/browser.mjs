// JsSIP in a real browser for t/sip_websocket_browser.t: Debian's
// Chromium, headless, driven by puppeteer-core, with fake media devices
// (a real RTCPeerConnection, getUserMedia's fake audio).  JsSIP's npm
// package has no browser build: it is bundled here with esbuild and
// served, with the page, by an HTTP server on 127.0.0.1.
//
//   node browser.mjs --url wss://127.0.0.1:8443 --domain example.com \
//       --ua alice:alice-Secret --ua bob:bob-Secret [--chromium PATH]
//
// One page per --ua.  The line protocol of ua.mjs, each command and each
// event prefixed with the page's user name:
//   alice register | alice call sip:bob@example.com | alice hangup | quit
//   alice registered | bob incoming alice | alice confirmed | ...
// Pages answer calls (audio from the fake device).

import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import esbuild from 'esbuild';
import puppeteer from 'puppeteer-core';

const here = dirname(fileURLToPath(import.meta.url));
const args = { ua: [] };

for (let i = 2; i < process.argv.length; i += 2) {
    const k = process.argv[i].replace(/^--/, '');
    const v = process.argv[i + 1];

    if (k === 'ua') {
        args.ua.push(v);
    } else {
        args[k] = v;
    }
}

function out(line) {
    process.stdout.write(line + '\n');
}

const bundle = (await esbuild.build({
    stdin: {
        contents: "window.JsSIP = require('jssip');",
        resolveDir: here,
    },
    bundle: true,
    platform: 'browser',
    write: false,
    logLevel: 'error',
})).outputFiles[0].text;

// The page's side: one JsSIP UA, its events reported through the
// function puppeteer exposes (report).
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>ngx_sip JsSIP</title>
<script src="/jssip.js"></script>
<script>
let ua, session = null;

// Candidates are gathered on 127.0.0.1 alone (the tests run in a network
// namespace with only lo): the first is enough to send the SDP.
function watch(s) {
    session = s;
    s.on('icecandidate', (e) => e.ready());
    s.on('confirmed', () => report('confirmed'));
    s.on('ended', (e) => { report('ended ' + e.originator); session = null; });
    s.on('failed', (e) => { report('callfail ' + e.cause); session = null; });
}

window.sipStart = (url, user, pass, domain) => {
    JsSIP.debug.enable('JsSIP:*');
    ua = new JsSIP.UA({
        sockets: [new JsSIP.WebSocketInterface(url)],
        uri: 'sip:' + user + '@' + domain,
        password: pass,
        register: false,
        register_expires: 600,
        session_timers: false,
    });
    window.sipUp = new Promise((resolve) => {
        ua.on('connected', () => {
            report('connected');
            resolve();
        });
    });
    ua.on('disconnected', () => report('disconnected'));
    ua.on('registered', () => report('registered'));
    ua.on('unregistered', () => report('unregistered'));
    ua.on('registrationFailed', (e) => report('regfail ' + e.cause));
    ua.on('newMessage', (e) => {
        if (e.originator === 'remote') {
            report('message ' + e.request.from.uri.user + ' ' + e.request.body);
        }
    });
    ua.on('newRTCSession', (e) => {
        if (e.originator !== 'remote') {
            return;
        }
        report('incoming ' + e.request.from.uri.user);
        if (session) {
            e.session.terminate({ status_code: 486 });
            return;
        }
        watch(e.session);
        e.session.answer({ mediaConstraints: { audio: true, video: false } });
    });
    ua.start();
};

window.sipCmd = async (cmd, arg) => {
    await window.sipUp;
    if (cmd === 'register') {
        ua.register();
    } else if (cmd === 'unregister') {
        ua.unregister();
    } else if (cmd === 'call') {
        watch(ua.call(arg,
            { mediaConstraints: { audio: true, video: false } }));
    } else if (cmd === 'hangup') {
        if (session) {
            session.terminate();
        }
    } else if (cmd === 'message') {
        const [target, ...text] = arg.split(' ');
        ua.sendMessage(target, text.join(' '), { eventHandlers: {
            succeeded: () => report('sent'),
            failed: (e) => report('sendfail ' + e.cause),
        } });
    } else {
        report('error unknown command ' + cmd);
    }
};
</script></head><body>JsSIP</body></html>`;

const http = createServer((req, res) => {
    if (req.url === '/jssip.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript' });
        res.end(bundle);
    } else if (req.url === '/') {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end(page);
    } else {
        res.writeHead(404);
        res.end();
    }
});

await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));

const profile = mkdtempSync(join(tmpdir(), 'ngx-sip-chromium-'));

const browser = await puppeteer.launch({
    executablePath: args.chromium || '/usr/bin/chromium',
    headless: true,
    userDataDir: profile,
    args: [
        '--no-sandbox',
        '--use-fake-device-for-media-stream',
        '--use-fake-ui-for-media-stream',
        '--ignore-certificate-errors',
        '--allow-loopback-in-peer-connection',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
    ],
});

const pages = {};

for (const spec of args.ua) {
    const [user, pass] = spec.split(':');
    const p = await browser.newPage();

    p.on('console', (m) => console.error(`${user}: ${m.text()}`));
    p.on('pageerror', (e) => out(`${user} error ${e.message}`));
    await p.exposeFunction('report', (line) => out(`${user} ${line}`));
    await p.goto(`http://127.0.0.1:${http.address().port}/`);
    await p.evaluate((u, s, pw, d) => window.sipStart(u, s, pw, d),
        args.url, user, pass, args.domain || 'example.com');

    pages[user] = p;
}

out('ready');

async function quit() {
    await browser.close().catch(() => {});
    http.close();
    rmSync(profile, { recursive: true, force: true });
    process.exit(0);
}

const rl = createInterface({ input: process.stdin });

rl.on('line', async (line) => {
    const [user, cmd, ...rest] = line.trim().split(' ');

    if (user === 'quit') {
        await quit();
    }

    const p = pages[user];

    if (!p) {
        out(`error no page ${user}`);
        return;
    }

    try {
        await p.evaluate((c, a) => window.sipCmd(c, a), cmd, rest.join(' '));
    } catch (e) {
        out(`${user} error ${cmd}: ${e.message}`);
    }
});

rl.on('close', quit);
