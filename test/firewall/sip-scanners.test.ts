// The scanner rule on a lab host, with realistic SIP messages from the attacker's namespace:
// legitimate INVITE, REGISTER and OPTIONS naming listed tools everywhere but at the start of the
// User-Agent header are never banned; each listed tool's User-Agent (any header case, with or
// without the blank after the colon, over UDP and TCP after a handshake) and Debian's sipvicious
// (svmap, svwar) are, for fail2ban.forgeableBantime (forged.test.ts: TCP without a handshake).
import assert from "node:assert/strict";
import { needs } from "../helpers/needs";
import { banSets } from "../../src/fail2ban/ban-action";
import { guideScannerAgents } from "../../src/fail2ban/schema";
import { labExec, type LabNode } from "../../src/lab/lab";
import { applyFromWorkstation, labStackFile, sh, startTestLab, statuses, tcpConnect, type TestLab } from "../helpers/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
const host = () => lab.host(1);
const attacker = () => lab.client("attacker");

interface SipMessage {
    method: "INVITE" | "REGISTER" | "OPTIONS";
    /** Header lines after the request line, without CR LF. */
    headers: string[];
    body?: string;
}

/** A request as a phone sends it: CR LF line ends, Content-Length of the body. */
function sipText(message: SipMessage, target: string): string {
    const body = message.body ?? "";
    return [`${message.method} sip:${target} SIP/2.0`, ...message.headers, `Content-Length: ${Buffer.byteLength(body)}`, "", body].join("\r\n");
}

interface Send {
    proto: "udp" | "tcp";
    src: string;
    dst: string;
    payload: string;
}

/** Sends each message from its own source address in the attacker's namespace (Python: bind, send, close). */
function sendFrom(node: LabNode, sends: Send[]): void {
    const program = [
        "import json, socket, sys, time",
        "for s in json.load(sys.stdin):",
        "    family = socket.AF_INET6 if ':' in s['dst'] else socket.AF_INET",
        "    kind = socket.SOCK_DGRAM if s['proto'] == 'udp' else socket.SOCK_STREAM",
        "    with socket.socket(family, kind) as sock:",
        "        sock.settimeout(3)",
        "        sock.bind((s['src'], 0))",
        "        if s['proto'] == 'udp':",
        "            sock.sendto(s['payload'].encode(), (s['dst'], 5060))",
        "        else:",
        "            sock.connect((s['dst'], 5060)); sock.sendall(s['payload'].encode())",
        // The firewall logs at most 20 scanner packets a second (burst 5): spaced, each is logged.
        "    time.sleep(0.25)",
    ].join("\n");
    const result = labExec(node, ["python3", "-c", program], { input: JSON.stringify(sends), timeoutMs: 60_000 });
    assert.equal(result.code, 0, result.stderr);
}

/** Legitimate requests with listed names everywhere a phone or a peer may put them, except the User-Agent's start. */
function legitimate(domain: string): SipMessage[] {
    const sdp = [
        "v=0",
        "o=friendly-scanner 1 1 IN IP4 203.0.113.66",
        "s=sipvicious",
        "c=IN IP4 203.0.113.66",
        "t=0 0",
        "m=audio 10000 RTP/AVP 0",
        "a=tool:sipcli",
        "",
    ].join("\r\n");
    return [
        {
            method: "INVITE",
            headers: [
                "Via: SIP/2.0/UDP 203.0.113.66:5060;branch=z9hG4bK-sundayddr-iWar",
                `From: "sipvicious fan" <sip:friendly-scanner@${domain}>;tag=CSipSimple-1`,
                `To: <sip:sipcli@${domain}>`,
                `Call-ID: SIVuS-Gulp-4711@${domain}`,
                "CSeq: 1 INVITE",
                `Contact: <sip:smap@203.0.113.66:5060>`,
                "Max-Forwards: 70",
                "User-Agent: Zoiper rv2.10 (friendly-scanner proof)",
                "Content-Type: application/sdp",
            ],
            body: sdp,
        },
        {
            method: "REGISTER",
            headers: [
                "Via: SIP/2.0/UDP 203.0.113.66:5060;branch=z9hG4bK-siparmyknife",
                `From: "Test Agent" <sip:101@${domain}>;tag=VaxSIPUserAgent`,
                `To: "Test Agent" <sip:101@${domain}>`,
                "Call-ID: friendly-request-77",
                "CSeq: 2 REGISTER",
                "Contact: <sip:101@203.0.113.66:5060>",
                "X-User-Agent: sipvicious",
                "user-agent: MicroSIP/3.21.3 (sipsak edition)",
                "Expires: 3600",
            ],
        },
        {
            method: "OPTIONS",
            headers: [
                "Via: SIP/2.0/UDP 203.0.113.66:5060;branch=z9hG4bK-sip-scan",
                `From: <sip:keepalive@${domain}>;tag=VaxIPUserAgent`,
                `To: <sip:iWar@${domain}>`,
                "Call-ID: sipv-keepalive",
                "CSeq: 3 OPTIONS",
                "Subject: sipcli",
                "User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)",
            ],
        },
    ];
}

/** A scanner's OPTIONS probe, its User-Agent written in one of the spellings SIP allows. */
function scannerProbe(agent: string, index: number): SipMessage {
    const header = ["User-Agent: ", "user-agent: ", "USER-AGENT:", "User-Agent: "][index % 4];
    const name = index % 3 === 1 ? agent.toUpperCase() : agent;
    return {
        method: "OPTIONS",
        headers: [
            "Via: SIP/2.0/UDP 203.0.113.66:5060;branch=z9hG4bK-1",
            "From: <sip:100@192.0.2.11>;tag=1",
            "To: <sip:100@192.0.2.11>",
            `Call-ID: ${index}`,
            "CSeq: 1 OPTIONS",
            `${header}${name}/0.3.4`,
        ],
    };
}

function banned(): string[] {
    const status = sh(host(), "fail2ban-client status ast-cli-attck", 15_000);
    return /Banned IP list:\s*(.*)$/m.exec(status.stdout)?.[1].trim().split(/\s+/).filter(Boolean) ?? [];
}

const scanned = (family: "iptables" | "ip6tables") =>
    Number(/^\s*(\d+)/m.exec(sh(host(), `${family} -L MORH-SIPSCAN -v -x -n | sed -n 3p`).stdout)?.[1] ?? "-1");

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
    }
}

/** Extra source addresses of the attacker, one per scanner, so each ban is seen on its own. */
const scannerSource = (index: number) => ({ v4: `203.0.113.${120 + index}`, v6: `2001:db8:113::${(0x120 + index).toString(16)}` });

before(async () => {
    lab = await startTestLab(1);
    const run = applyFromWorkstation(lab, labStackFile(lab, "sip-scanners"));
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(statuses(run.report), { firewall: "applied", sshd: "applied", fail2ban: "applied", apache: "applied" });
    // Something answers SIP over TCP (no Asterisk in the lab): the request follows the handshake.
    assert.equal(
        sh(host(), "setsid socat TCP6-LISTEN:5060,fork,reuseaddr SYSTEM:'cat >/dev/null' </dev/null >/dev/null 2>&1 & sleep 0.5; echo started").code,
        0,
    );
    const addresses = Array.from({ length: guideScannerAgents.length + 2 }, (_, i) => scannerSource(i));
    const add = addresses.map(({ v4, v6 }) => `ip addr add ${v4}/24 dev eth0 && ip -6 addr add ${v6}/64 dev eth0 nodad`).join(" && ");
    assert.equal(sh(attacker(), add).code, 0);
});
after(() => lab?.stop());

describe("the SIP scanner rule on a lab host", () => {
    it("never bans legitimate INVITE, REGISTER and OPTIONS naming listed tools in From, To, Call-ID, Via, the domain and SDP", async () => {
        const sends: Send[] = [];
        for (const [src, dst] of [
            [attacker().v4, host().v4],
            [attacker().v6, host().v6],
        ]) {
            for (const message of legitimate("sipvoice.example"))
                for (const proto of ["udp", "tcp"] as const)
                    sends.push({ proto, src, dst, payload: sipText(message, `100@${dst.includes(":") ? `[${dst}]` : dst}`) });
        }
        sendFrom(attacker(), sends);
        await new Promise((resolve) => setTimeout(resolve, 3000));
        assert.equal(scanned("iptables"), 0, "no IPv4 packet reached the scanner drop");
        assert.equal(scanned("ip6tables"), 0, "no IPv6 packet reached the scanner drop");
        assert.deepEqual(banned(), []);
        assert.equal(tcpConnect(attacker(), host().v4, 443), "open");
    });

    it("bans each listed tool's User-Agent (any header case, with or without the blank, UDP and TCP, IPv4 and IPv6)", async () => {
        const sends: Send[] = guideScannerAgents.map((agent, index) => {
            const v6 = index % 5 === 4;
            const dst = v6 ? host().v6 : host().v4;
            return {
                proto: index % 2 === 0 ? "udp" : "tcp",
                src: v6 ? scannerSource(index).v6 : scannerSource(index).v4,
                dst,
                payload: sipText(scannerProbe(agent, index), `100@${v6 ? `[${dst}]` : dst}`),
            };
        });
        sendFrom(attacker(), sends);
        const wanted = sends.map((send) => send.src);
        await waitFor("every scanner banned", () => wanted.every((address) => banned().includes(address)), 30_000);
        // One UDP datagram is evidence a forged source can produce: bounded (fail2ban.forgeableBantime).
        assert.equal(sh(host(), "fail2ban-client get ast-cli-attck bantime").stdout.trim(), "3600", "for an hour, not permanently");
        for (const address of wanted)
            assert.equal(
                sh(host(), `ipset test ${banSets("ast-cli-attck", 3600).set}-${address.includes(":") ? 6 : 4} ${address}`).code,
                0,
                `${address} in the timed set`,
            );
        // Over TCP the requests followed their handshakes: the scanner rule saw them as ESTABLISHED.
        assert.match(
            sh(host(), "iptables -S MORH-INPUT").stdout,
            /^-A MORH-INPUT -p tcp -m tcp --dport 5060 -m conntrack --ctstate ESTABLISHED -j MORH-SIPUA$/m,
        );
    });

    it("bans Debian's sipvicious: svmap and svwar", async () => {
        // svmap binds to the address it is given; svwar (0.3.4) sends from the default address,
        // which the legitimate messages above used: last, as it bans the attacker's own address.
        const svmap = scannerSource(guideScannerAgents.length).v4;
        sh(attacker(), `timeout 15 svmap -b ${svmap} -p5060 ${host().v4}`, 30_000);
        await waitFor("svmap banned", () => banned().includes(svmap), 30_000);
        sh(attacker(), `timeout 15 svwar -e100-102 -m OPTIONS ${host().v4}`, 30_000);
        await waitFor("svwar banned", () => banned().includes(attacker().v4), 30_000);
        assert.notEqual(tcpConnect(attacker(), host().v4, 443), "open", "the ban covers every port");
    });
});
