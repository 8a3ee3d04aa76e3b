// Forged sources on a lab host (issue 21): the attacker sends, through a raw socket, SIP packets
// whose source address is someone else's (a carrier's, a customer's PBX). Three UDP datagrams with
// a scanner's User-Agent ban the forged address, but only for fail2ban.forgeableBantime, never in a
// permanent set; TCP segments with no handshake before them reach neither the scanner rule nor
// the jail; sipvicious scanning from the attacker's own address is still banned.
import assert from "node:assert/strict";
import { needs } from "../helpers/needs";
import { banSets } from "../../src/fail2ban/ban-action";
import { jailNames } from "../../src/fail2ban/schema";
import { labExec, type LabNode } from "../../src/lab/lab";
import { waitFor } from "../helpers/faults";
import { applyFromWorkstation, labStackFile, sh, startTestLab, statuses, type TestLab } from "../helpers/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
const host = () => lab.host(1);
const attacker = () => lab.client("attacker");
const workstation = () => lab.client("workstation");

/** Addresses of the attacker's /24 no lab node has (not the attacker's, not the workstation's). */
const FORGED_UDP = "203.0.113.77";
const FORGED_TCP = "203.0.113.78";
/** An extra address of the attacker's own, for a scanner that completes its handshake. */
const HANDSHAKE = "203.0.113.79";
/** fail2ban.forgeableBantime's default. */
const FORGEABLE_BANTIME = 3600;

/** A scanner's OPTIONS probe, as SIPVicious sends it. */
const probe = (target: string, callId: string) =>
    [
        `OPTIONS sip:100@${target} SIP/2.0`,
        "Via: SIP/2.0/UDP 203.0.113.77:5060;branch=z9hG4bK-1",
        `From: <sip:100@${target}>;tag=1`,
        `To: <sip:100@${target}>`,
        `Call-ID: ${callId}`,
        "CSeq: 1 OPTIONS",
        "User-Agent: friendly-scanner",
        "Content-Length: 0",
        "",
        "",
    ].join("\r\n");

interface RawPacket {
    proto: "udp" | "tcp";
    src: string;
    dst: string;
    payload: string;
}

/**
 * Sends each packet through a raw IPv4 socket (IP_HDRINCL, implied by IPPROTO_RAW), its source
 * address written in the header: nothing the attacker's kernel checks. TCP segments are PSH+ACK
 * with random sequence numbers, as from the middle of a stream no handshake opened.
 */
function sendRaw(node: LabNode, packets: RawPacket[]): void {
    const program = [
        "import json, random, socket, struct, sys, time",
        "def checksum(data):",
        "    data += b'\\0' * (len(data) % 2)",
        "    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))",
        "    while total >> 16: total = (total & 0xffff) + (total >> 16)",
        "    return ~total & 0xffff",
        "raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)",
        "for p in json.load(sys.stdin):",
        "    src, dst, payload = socket.inet_aton(p['src']), socket.inet_aton(p['dst']), p['payload'].encode()",
        "    sport = random.randint(20000, 60000)",
        "    if p['proto'] == 'udp':",
        "        proto, header = socket.IPPROTO_UDP, struct.pack('!HHHH', sport, 5060, 8 + len(payload), 0)",
        "        at = 6",
        "    else:",
        "        proto = socket.IPPROTO_TCP",
        "        header = struct.pack('!HHIIBBHHH', sport, 5060, random.getrandbits(32), random.getrandbits(32), 5 << 4, 0x18, 64240, 0, 0)",
        "        at = 16",
        "    pseudo = src + dst + struct.pack('!BBH', 0, proto, len(header) + len(payload))",
        "    header = header[:at] + struct.pack('!H', checksum(pseudo + header + payload)) + header[at + 2:]",
        // Version 4, header length 5 words; the kernel fills in the IP checksum.
        "    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(header) + len(payload), random.getrandbits(16), 0x4000, 64, proto, 0, src, dst)",
        "    raw.sendto(ip + header + payload, (p['dst'], 0))",
        // Spaced: the firewall logs at most 20 scanner packets a second.
        "    time.sleep(0.25)",
    ].join("\n");
    const result = labExec(node, ["python3", "-c", program], { input: JSON.stringify(packets), timeoutMs: 30_000 });
    assert.equal(result.code, 0, result.stderr);
}

/** One SIP request over a real TCP connection (handshake first) from `src`. */
function sendOverTcp(node: LabNode, src: string, dst: string, payload: string): void {
    const program =
        "import socket, sys\nwith socket.create_connection((sys.argv[2], 5060), timeout=5, source_address=(sys.argv[1], 0)) as s: s.sendall(sys.stdin.read().encode())";
    const result = labExec(node, ["python3", "-c", program, src, dst], { input: payload, timeoutMs: 15_000 });
    assert.equal(result.code, 0, result.stderr);
}

/** fail2ban's bans of `jail`: address -> ban time in seconds (-1 permanent). */
function bansOf(jail: string): Map<string, number> {
    const listed = sh(host(), `fail2ban-client get ${jail} banip --with-time`, 15_000);
    assert.equal(listed.code, 0, listed.stderr);
    // "ADDRESS \tSTART + BANTIME = END" (fail2ban's banmanager.getBanList).
    return new Map([...listed.stdout.matchAll(/^(\S+)\s+\S+ \S+ \+ (-?\d+) = /gm)].map((match) => [match[1], Number(match[2])]));
}

/** A ban time fail2ban lists for a forgeable jail's ban: the bound (fail2ban has listed a second more), never -1. */
const bounded = (seconds: number | undefined) => seconds !== undefined && seconds >= FORGEABLE_BANTIME && seconds <= FORGEABLE_BANTIME + 5;
const banned = (jail: string, address: string) => bansOf(jail).has(address);
const inSet = (set: string, address: string) => sh(host(), `ipset test ${set} ${address} 2>/dev/null`).code === 0;

/** The ban sets on the host that keep their entries forever (no timeout in the header). */
function permanentSets(): string[] {
    const sets = sh(host(), "ipset list -n | grep '^morh-ban-'").stdout.split("\n").filter(Boolean);
    return sets.filter((set) => !/\btimeout \d+/.test(sh(host(), `ipset list -t ${set}`).stdout));
}

/** Packets that went through the rule of MORH-INPUT matching `pattern` (iptables -L -v -x). */
function inputCounter(pattern: RegExp): number {
    const line = sh(host(), "iptables -L MORH-INPUT -v -x -n")
        .stdout.split("\n")
        .find((candidate) => pattern.test(candidate));
    assert.ok(line, `a MORH-INPUT rule matches ${pattern}`);
    return Number(line.trim().split(/\s+/)[0]);
}
const tcpScannerCheck = /MORH-SIPUA\s+(6|tcp) .*tcp dpt:5060\b/;
const tcpSipAccept = /ACCEPT\s+(6|tcp) .*tcp dpt:5060\s*$/;

const scannerLogMentions = (address: string) =>
    sh(host(), `grep -c 'MORH-SIPSCAN.* SRC=${address.replace(/\./g, "\\.")} ' /var/log/ulog/syslogemu.log`).stdout.trim() !== "0";

before(async () => {
    lab = await startTestLab(1);
    const run = applyFromWorkstation(lab, labStackFile(lab, "forged"));
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.deepEqual(statuses(run.report), { firewall: "applied", sshd: "applied", fail2ban: "applied", apache: "applied" });
    // Something answers SIP over TCP, as Asterisk would (no Asterisk in the lab).
    assert.equal(sh(host(), "setsid socat TCP6-LISTEN:5060,fork,reuseaddr SYSTEM:'cat >/dev/null' </dev/null >/dev/null 2>&1 & echo started").code, 0);
    assert.ok(await waitFor(() => sh(host(), "ss -Hltn 'sport = :5060'").stdout.includes("5060"), 10_000), "socat listens on 5060/tcp");
    assert.equal(sh(attacker(), `ip addr add ${HANDSHAKE}/24 dev eth0`).code, 0);
});
after(() => lab?.stop());

describe("forged sources on a lab host", () => {
    it("bans a forged UDP source only for fail2ban.forgeableBantime, in no permanent set", async () => {
        assert.equal(sh(host(), "fail2ban-client get ast-cli-attck bantime").stdout.trim(), String(FORGEABLE_BANTIME));
        sendRaw(
            attacker(),
            Array.from({ length: 3 }, (_, i) => ({ proto: "udp" as const, src: FORGED_UDP, dst: host().v4, payload: probe(host().v4, `forged-udp-${i}`) })),
        );
        const timedSet = `${banSets("ast-cli-attck", FORGEABLE_BANTIME).set}-4`;
        assert.ok(
            await waitFor(() => banned("ast-cli-attck", FORGED_UDP) && inSet(timedSet, FORGED_UDP), 30_000),
            `ast-cli-attck bans ${FORGED_UDP} (ipset ${timedSet})`,
        );
        assert.ok(scannerLogMentions(FORGED_UDP), "the firewall logged the forged datagrams");
        assert.ok(bounded(bansOf("ast-cli-attck").get(FORGED_UDP)), `fail2ban bans it for about ${FORGEABLE_BANTIME} s`);
        assert.match(
            sh(host(), `ipset list ${timedSet}`).stdout,
            new RegExp(`^${FORGED_UDP.replace(/\./g, "\\.")} timeout \\d+`, "m"),
            "the set entry expires",
        );
        const permanent = permanentSets();
        assert.ok(permanent.includes(`${banSets("asterisk-manager", -1).set}-4`), "the permanent sets are there to look in");
        for (const set of permanent) assert.ok(!inSet(set, FORGED_UDP), `${FORGED_UDP} is not in the permanent set ${set}`);
        for (const jail of [...jailNames, "recidive"]) assert.notEqual(bansOf(jail).get(FORGED_UDP), -1, `${jail} does not ban ${FORGED_UDP} permanently`);
        assert.ok(!banned("ast-cli-attck", attacker().v4), "the attacker's own address is not what was banned");
    });

    it("bans nobody for TCP segments with no handshake before them (forged or not), and still the scanner whose request follows its handshake", async () => {
        const [checked, accepted] = [inputCounter(tcpScannerCheck), inputCounter(tcpSipAccept)];
        const segments = (src: string) =>
            Array.from({ length: 3 }, (_, i) => ({ proto: "tcp" as const, src, dst: host().v4, payload: probe(host().v4, `no-handshake-${src}-${i}`) }));
        sendRaw(attacker(), [...segments(FORGED_TCP), ...segments(attacker().v4)]);
        const arrived = () => inputCounter(tcpScannerCheck) - checked + inputCounter(tcpSipAccept) - accepted;
        assert.ok(await waitFor(() => arrived() >= 6, 10_000), "the six segments reached the host");
        assert.equal(inputCounter(tcpScannerCheck), checked, "none reached the scanner rule");
        assert.equal(inputCounter(tcpSipAccept), accepted + 6, "all six reached the SIP accept, as new packets");
        // Then a scanner that completes its handshake: once it is banned, fail2ban has read past
        // every line the segments before it could have caused.
        sendOverTcp(attacker(), HANDSHAKE, host().v4, probe(host().v4, "after-handshake"));
        assert.ok(await waitFor(() => banned("ast-cli-attck", HANDSHAKE), 30_000), `ast-cli-attck bans ${HANDSHAKE}, whose request followed its handshake`);
        assert.ok(inputCounter(tcpScannerCheck) > checked, "its request went through the scanner rule");
        for (const address of [FORGED_TCP, attacker().v4]) {
            assert.ok(!scannerLogMentions(address), `no MORH-SIPSCAN line for ${address}`);
            for (const jail of [...jailNames, "recidive"]) assert.ok(!banned(jail, address), `${jail} does not ban ${address}`);
        }
    });

    it("still bans sipvicious scanning from the attacker's own address (svmap)", async () => {
        const scan = sh(attacker(), `timeout 20 svmap -p5060 ${host().v4} 2>&1`, 30_000);
        assert.notEqual(scan.code, 124, "svmap ends by itself");
        assert.ok(await waitFor(() => banned("ast-cli-attck", attacker().v4), 30_000), "ast-cli-attck bans the attacker");
        assert.ok(bounded(bansOf("ast-cli-attck").get(attacker().v4)));
        assert.notEqual(sh(attacker(), `timeout 5 bash -c 'exec 3<>/dev/tcp/${host().v4}/443' 2>&1; echo $?`).stdout.trim(), "0", "the ban covers every port");
        assert.ok(!banned("ast-cli-attck", workstation().v4));
    });
});
