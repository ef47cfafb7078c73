// A SIP over WebSocket user agent run from Node for the tests and the
// benchmark: JsSIP or SIP.js, driven by a line protocol on stdin and
// stdout (t/lib/NgxWsClient.pm is the Perl side).
//
//   node ua.mjs --lib jssip|sipjs --url wss://127.0.0.1:8443 \
//       --user alice --pass secret --domain example.com [--answer]
//
// Commands, one a line on stdin:
//   register             REGISTER (with digest when challenged)
//   message <uri> <text> a MESSAGE
//   call <uri>           an INVITE
//   hangup               BYE (or CANCEL) of the current call
//   unregister           REGISTER with Expires 0
//   quit                 exit 0
// Events, one a line on stdout:
//   connected | disconnected          (connected again by itself, and
//                                        registered again if it was)
//   registered | regfail <cause> | unregistered
//   sent | sendfail <cause>             (answer to our MESSAGE)
//   message <from user> <text>          (a MESSAGE came, answered 200)
//   incoming <from user>                (an INVITE came, answered 200 if
//                                        --answer, else 486)
//   confirmed                           (caller: 200 in, ACK sent;
//                                        callee: ACK in)
//   callfail <cause>
//   ended <local|remote>                (BYE sent or received)
//   error <text>
//
// Node has no WebRTC.  The media side of the call is not what is tested:
// the peer connection (JsSIP) and the session description handler
// (SIP.js) below are stand-ins that offer and answer one fixed audio SDP
// and never send a packet.  Everything SIP (transport, digest, dialogs,
// transactions) is the libraries' own code.

import { createInterface } from 'node:readline';
import WS from 'ws';

const args = {};

for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];

    if (!a.startsWith('--')) {
        continue;
    }

    const next = process.argv[i + 1];

    if (next === undefined || next.startsWith('--')) {
        args[a.slice(2)] = true;
    } else {
        args[a.slice(2)] = next;
        i++;
    }
}

for (const k of ['lib', 'url', 'user', 'pass', 'domain']) {
    if (!args[k]) {
        console.error(`ua.mjs: --${k} is required`);
        process.exit(2);
    }
}

function out(line) {
    process.stdout.write(line + '\n');
}

// WSS to a test server with a self-signed certificate
class NodeWebSocket extends WS {
    constructor(url, protocols) {
        super(url, protocols, { rejectUnauthorized: false });
    }
}

const SDP = [
    'v=0',
    'o=- 1 1 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    'm=audio 9 RTP/AVP 0',
    'a=rtpmap:0 PCMU/8000',
    'a=sendrecv',
    ''
].join('\r\n');

// What JsSIP uses of RTCPeerConnection: offers and answers of the fixed
// SDP, candidates gathered at once.
class FixedPeerConnection extends EventTarget {
    constructor() {
        super();
        this.localDescription = null;
        this.remoteDescription = null;
        this.signalingState = 'stable';
        this.iceGatheringState = 'complete';
        this.iceConnectionState = 'new';
        this.connectionState = 'new';
    }

    createOffer() {
        return Promise.resolve({ type: 'offer', sdp: SDP });
    }

    createAnswer() {
        return Promise.resolve({ type: 'answer', sdp: SDP });
    }

    setLocalDescription(d) {
        this.localDescription = d;
        this.signalingState = d.type === 'offer' ? 'have-local-offer'
                                                 : 'stable';
        return Promise.resolve();
    }

    setRemoteDescription(d) {
        this.remoteDescription = d;
        this.signalingState = d.type === 'offer' ? 'have-remote-offer'
                                                 : 'stable';
        return Promise.resolve();
    }

    addTrack() { return {}; }
    getSenders() { return []; }
    getReceivers() { return []; }
    getLocalStreams() { return []; }
    getRemoteStreams() { return []; }
    close() { this.signalingState = 'closed'; }
}

class FixedSessionDescription {
    constructor(d) {
        this.type = d.type;
        this.sdp = d.sdp;
    }
}

// The same for SIP.js: its SessionDescriptionHandler interface.
class FixedSdh {
    close() {}
    hasDescription(type) { return type === 'application/sdp'; }
    getDescription() {
        return Promise.resolve({ body: SDP, contentType: 'application/sdp' });
    }
    setDescription() { return Promise.resolve(); }
    rollbackDescription() { return Promise.resolve(); }
    sendDtmf() { return false; }
}

globalThis.window = globalThis;
globalThis.WebSocket = NodeWebSocket;
globalThis.RTCPeerConnection = FixedPeerConnection;
globalThis.RTCSessionDescription = FixedSessionDescription;

const aor = `sip:${args.user}@${args.domain}`;
const ua = args.lib === 'jssip' ? await jssip() : await sipjs();

const rl = createInterface({ input: process.stdin });

rl.on('line', async (line) => {
    const [cmd, ...rest] = line.trim().split(' ');

    try {
        if (cmd === 'quit') {
            await ua.quit();
            process.exit(0);
        }

        if (!ua[cmd]) {
            out(`error unknown command ${cmd}`);
            return;
        }

        await ua[cmd](...rest);

    } catch (e) {
        out(`error ${cmd}: ${e && e.message ? e.message : e}`);
    }
});

rl.on('close', () => process.exit(0));

async function jssip() {
    const { default: JsSIP } = await import('jssip');

    if (args.debug) {
        JsSIP.debug.enable('JsSIP:*');
    }

    const socket = new JsSIP.WebSocketInterface(args.url);
    const ua = new JsSIP.UA({
        sockets: [socket],
        uri: aor,
        password: args.pass,
        register: false,
        register_expires: 600,
        session_timers: false,
        connection_recovery_min_interval: 2,
        connection_recovery_max_interval: 30,
    });
    let session = null;
    let up;
    const connected = new Promise((resolve) => { up = resolve; });

    // as a browser app does: registered again on a new connection (the
    // old one closed by a reload of the server, say); JsSIP itself
    // connects again
    let wanted = false;

    ua.on('connected', () => {
        out('connected');
        up();
        if (wanted) {
            ua.register();
        }
    });
    ua.on('disconnected', () => out('disconnected'));
    ua.on('registered', () => out('registered'));
    ua.on('unregistered', () => out('unregistered'));
    ua.on('registrationFailed', (e) => out(`regfail ${e.cause}`));

    ua.on('newMessage', (e) => {
        if (e.originator !== 'remote') {
            return;
        }
        out(`message ${e.request.from.uri.user} ${e.request.body}`);
    });

    function watch(s) {
        session = s;
        s.on('confirmed', () => out('confirmed'));
        s.on('ended', (e) => {
            out(`ended ${e.originator}`);
            session = null;
        });
        s.on('failed', (e) => {
            out(`callfail ${e.cause}`);
            session = null;
        });
    }

    ua.on('newRTCSession', (e) => {
        if (e.originator !== 'remote') {
            return;
        }

        out(`incoming ${e.request.from.uri.user}`);

        if (session || !args.answer) {
            e.session.terminate({ status_code: 486 });
            return;
        }

        watch(e.session);
        e.session.answer({ mediaConstraints: { audio: false, video: false } });
    });

    ua.start();

    return {
        async register() {
            await connected;
            wanted = true;
            ua.register();
        },
        unregister() {
            wanted = false;
            ua.unregister();
        },
        async message(target, ...text) {
            await connected;
            ua.sendMessage(target, text.join(' '), {
                eventHandlers: {
                    succeeded: () => out('sent'),
                    failed: (e) => out(`sendfail ${e.cause}`),
                },
            });
        },
        async call(target) {
            await connected;
            watch(ua.call(target, {
                mediaConstraints: { audio: false, video: false },
            }));
        },
        hangup() {
            if (session) {
                session.terminate();
            }
        },
        quit() { ua.stop(); },
    };
}

async function sipjs() {
    const SIP = await import('sip.js');

    const ua = new SIP.UserAgent({
        uri: SIP.UserAgent.makeURI(aor),
        transportOptions: { server: args.url, traceSip: !!args.debug },
        authorizationUsername: args.user,
        authorizationPassword: args.pass,
        sessionDescriptionHandlerFactory: () => new FixedSdh(),
        logLevel: args.debug ? 'debug' : 'error',
        logBuiltinEnabled: false,
        logConnector: (level, category, label, content) =>
            console.error(`${level} ${category} ${content}`),
        noAnswerTimeout: 60,
    });
    const registerer = new SIP.Registerer(ua, { expires: 600 });
    let session = null;

    // SIP.js leaves connecting again to the application: as its
    // documentation's examples do, again after a second, and registered
    // again once connected
    let wanted = false;
    let quitting = false;

    function onConnect() {
        out('connected');
        if (wanted) {
            register();
        }
    }

    function onDisconnect() {
        out('disconnected');
        reconnect();
    }

    function reconnect() {
        if (!quitting) {
            setTimeout(() => ua.reconnect().catch(reconnect), 1000);
        }
    }

    function register() {
        registerer.register({
            requestDelegate: {
                onAccept: () => out('registered'),
                onReject: (r) => out(`regfail ${r.message.statusCode}`),
            },
        }).catch((e) => out(`regfail ${e.message}`));
    }

    // "registered" at each 200: after a new connection the registerer's
    // state stays Registered, and a state listener would hear nothing
    registerer.stateChange.addListener((state) => {
        if (state === SIP.RegistererState.Unregistered) {
            out('unregistered');
        }
    });

    // a delegate's onBye must answer the BYE itself
    function ended(s, bye) {
        s.ended = 'remote';
        bye.accept();
    }

    function watch(s) {
        session = s;
        s.stateChange.addListener((state) => {
            if (state === SIP.SessionState.Established) {
                out('confirmed');
            } else if (state === SIP.SessionState.Terminated) {
                if (s.ended) {
                    out(`ended ${s.ended}`);
                }
                session = null;
            }
        });
    }

    ua.delegate = {
        onConnect,
        onDisconnect,
        onMessage(m) {
            m.accept();
            out(`message ${m.request.from.uri.user} ${m.request.body}`);
        },
        onInvite(inv) {
            out(`incoming ${inv.request.from.uri.user}`);

            if (session || !args.answer) {
                inv.reject({ statusCode: 486 });
                return;
            }

            watch(inv);
            inv.delegate = { onBye: (bye) => ended(inv, bye) };
            inv.accept();
        },
    };

    await ua.start();

    return {
        register() {
            wanted = true;
            register();
        },
        unregister() {
            wanted = false;
            registerer.unregister();
        },
        message(target, ...text) {
            const uri = SIP.UserAgent.makeURI(target);
            new SIP.Messager(ua, uri, text.join(' ')).message({
                requestDelegate: {
                    onAccept: () => out('sent'),
                    onReject: (r) => out(`sendfail ${r.message.statusCode}`),
                },
            }).catch((e) => out(`sendfail ${e.message}`));
        },
        call(target) {
            const inv = new SIP.Inviter(ua, SIP.UserAgent.makeURI(target));
            watch(inv);
            inv.delegate = { onBye: (bye) => ended(inv, bye) };
            inv.invite({
                requestDelegate: {
                    onReject: (r) =>
                        out(`callfail ${r.message.statusCode}`),
                },
            }).catch((e) => out(`callfail ${e.message}`));
        },
        hangup() {
            if (!session) {
                return;
            }
            if (session.state === SIP.SessionState.Established) {
                session.ended = 'local';
                session.bye();
            } else if (session instanceof SIP.Inviter) {
                session.cancel();
            }
        },
        async quit() {
            quitting = true;
            await ua.stop();
        },
    };
}
