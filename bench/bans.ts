// npm run bench -- bans: bans and blocklists at scale on one lab host, side by side.
//   packet path   RTP-sized UDP (172-byte datagrams) from the attacker to the host's RTP port
//                 (10000/udp), for a bounded time and count, with 0, 20,000 and 100,000 bans
//                 (addresses of 198.18.0.0/15, never the sender's): as fail2ban's iptables-allports
//                 bans them (one REJECT rule a ban in an f2b- chain jumped to first in INPUT) and as
//                 mor-harden's ban action does (one ipset, one rule). Datagrams that pass the
//                 firewall are counted by the host's own RTP rule.
//   restart       `fail2ban-client restart` with 100,000 permanent bans in fail2ban's database
//                 and the ban journal: until the set holds them all, and until fail2ban lists them.
//   blocklist     a 100,000-entry list through the code `pulumi up` runs: first apply, a
//                 one-line change beside a no-change apply (one process each, alternating), and
//                 drift right after a change and after a no-change apply, against the floor
//                 (ssh `true`) and drift without lists (a second host hardened alike without
//                 them, its drift interleaved run by run with the list host's).
// Traffic flows only between the lab's namespaces; 198.18.0.0/15 addresses are list entries only.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { banSets } from "../src/fail2ban/ban-action";
import { labExec, labUp, type LabNode, type LabState } from "../src/lab/lab";
import { LAB_STACK } from "../src/lab/stacks";
import { benchEnvironment, ratio, runner } from "./fleet";
import { withBenchLab } from "./lab-dir";
import { higherIsBetter, printTable, summarize, type Figure } from "./stats";

const RTP_PORT = 10000;
const DATAGRAM_BYTES = 172;
const SEND_SECONDS = Number(process.env.BENCH_SEND_SECONDS ?? 3);
const SEND_MAX = 3_000_000;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Pairs of a no-change apply and a one-line change (one process each: their spread is wider). */
const PAIRS = Number(process.env.BENCH_PAIRS ?? 6);
const BAN_COUNTS = [20_000, 100_000];
const RESTART_BANS = 100_000;
const LIST_ENTRIES = 100_000;
const PERMANENT_JAIL = "ast-cli-attck";
/** BENCH_BANS=packet,restart,blocklist (the default: all) narrows the run. */
const parts = new Set((process.env.BENCH_BANS ?? "packet,restart,blocklist").split(","));

function sh(node: LabNode, script: string, timeoutMs = 600_000): string {
    const result = labExec(node, ["sh", "-c", script], { timeoutMs });
    if (result.code !== 0) throw new Error(`${node.name}: ${script.slice(0, 120)}: ${result.stderr || result.stdout}`);
    return result.stdout;
}

/** The n-th address of 198.18.0.0/15 (from 198.18.0.1): list entries only, never a destination. */
const benchAddress = (index: number) => `198.${18 + Math.floor((index + 1) / 65536)}.${Math.floor((index + 1) / 256) % 256}.${(index + 1) % 256}`;
const addresses = (count: number, from = 0) => Array.from({ length: count }, (_, i) => benchAddress(from + i));

/** Sends 172-byte datagrams as fast as one Python loop can, for SEND_SECONDS or SEND_MAX datagrams; prints the count. */
const senderScript = (address: string) =>
    `/usr/bin/python3 -c 'import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"\\x80" * ${DATAGRAM_BYTES}
target = ("${address}", ${RTP_PORT})
end = time.time() + ${SEND_SECONDS}
sent = 0
while sent < ${SEND_MAX}:
    for _ in range(1000):
        try:
            s.sendto(payload, target)
        except OSError:
            pass
    sent += 1000
    if time.time() >= end:
        break
print(sent)'`;

/** Datagrams the host's RTP accept rule counted since the counters were zeroed. */
function rtpAccepted(host: LabNode): number {
    const line = sh(host, "iptables -w -nvx -L MORH-INPUT")
        .split("\n")
        .find((l) => l.includes(`udp dpts:${RTP_PORT}:`));
    if (!line) throw new Error("no RTP rule in MORH-INPUT");
    return Number(line.trim().split(/\s+/)[0]);
}

/** RTP datagrams a second from the attacker that the host's RTP rule accepted, `runs` times. */
export function measureThroughput(state: LabState, host: LabNode, runs = RUNS): number[] {
    const attacker = state.clients.find((client) => client.name === "attacker")!;
    const rates: number[] = [];
    for (let run = 0; run < runs; run++) {
        sh(host, "iptables -w -Z MORH-INPUT");
        const started = process.hrtime.bigint();
        sh(attacker, senderScript(state.hosts[0].v4), (SEND_SECONDS + 30) * 1000);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        rates.push(rtpAccepted(host) / seconds);
    }
    return rates;
}

/** `count` bans the way iptables-allports holds them: REJECT rules in an f2b- chain jumped to first. */
function loadChainBans(host: LabNode, count: number): void {
    const rules = addresses(count).map((address) => `-A f2b-bench -s ${address}/32 -j REJECT --reject-with icmp-port-unreachable`);
    const file = `/tmp/bench-chain-${count}`;
    writeHostFile(host, file, ["*filter", ":f2b-bench - [0:0]", ...rules, "-A f2b-bench -j RETURN", "-I INPUT 1 -j f2b-bench", "COMMIT", ""].join("\n"));
    sh(host, `iptables-restore -w --noflush < ${file} && rm -f ${file}`);
}

function unloadChainBans(host: LabNode): void {
    sh(host, "iptables -w -D INPUT -j f2b-bench && iptables -w -F f2b-bench && iptables -w -X f2b-bench");
}

/** The permanent jail's IPv4 set, as mor-harden's ban action holds bans. */
const permanentSet = `${banSets(PERMANENT_JAIL, -1).set}-4`;

function loadSetBans(host: LabNode, count: number): void {
    const file = `/tmp/bench-set-${count}`;
    writeHostFile(
        host,
        file,
        addresses(count)
            .map((address) => `add ${permanentSet} ${address}`)
            .join("\n") + "\n",
    );
    sh(host, `ipset restore -exist < ${file} && rm -f ${file}`);
}

/** Writes a large file into the host (through the command's standard input). */
function writeHostFile(host: LabNode, path: string, content: string): void {
    const result = labExec(host, ["sh", "-c", `cat > '${path}'`], { input: content, timeoutMs: 120_000 });
    if (result.code !== 0) throw new Error(`${host.name}: writing ${path}: ${result.stderr}`);
}

function benchPacketPath(state: LabState): Figure[] {
    const host = state.hosts[0];
    const figures: Figure[] = [];
    const base = higherIsBetter(summarize("RTP datagrams through the firewall, no bans", "datagrams/s", measureThroughput(state, host)));
    figures.push(base);
    for (const count of BAN_COUNTS) {
        loadChainBans(host, count);
        const chain = higherIsBetter(summarize(`RTP datagrams, ${count} bans as iptables-allports rules`, "datagrams/s", measureThroughput(state, host)));
        unloadChainBans(host);
        loadSetBans(host, count);
        const set = higherIsBetter(summarize(`RTP datagrams, ${count} bans in mor-harden's ipset`, "datagrams/s", measureThroughput(state, host)));
        sh(host, `ipset flush ${permanentSet}`);
        figures.push(
            chain,
            ratioOf(`${count} bans, iptables-allports / no bans`, chain, base),
            set,
            ratioOf(`${count} bans, mor-harden's ipset / no bans`, set, base, count === 100_000 ? 0.8 : undefined),
        );
    }
    return figures;
}

/** A throughput ratio: higher is better, `atLeast` its target. */
const ratioOf = (name: string, numerator: Figure, denominator: Figure, atLeast?: number): Figure => ({
    ...ratio(name, numerator, denominator, atLeast, true),
    better: "higher",
});

/** Seeds fail2ban's database and the jail's ban journal with permanent bans (fail2ban stopped). */
const seedScript = (count: number) => `/usr/bin/python3 - <<'SEED'
import ipaddress, sqlite3, time
db = sqlite3.connect("/var/lib/fail2ban/fail2ban.sqlite3")
now = int(time.time()) - 60
rows = [str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("198.18.0.1")) + i)) for i in range(${count})]
db.executemany("INSERT OR REPLACE INTO bans(jail, ip, timeofban, bantime, bancount, data) VALUES (?, ?, ?, -1, 1, '{}')", [("${PERMANENT_JAIL}", ip, now) for ip in rows])
db.executemany("INSERT OR REPLACE INTO bips(ip, jail, timeofban, bantime, bancount, data) VALUES (?, ?, ?, -1, 1, '{}')", [(ip, "${PERMANENT_JAIL}", now) for ip in rows])
db.commit()
with open("/var/lib/mor-harden/fail2ban/${PERMANENT_JAIL}.bans", "a") as journal:
    journal.writelines("0 %s\\n" % ip for ip in rows)
SEED`;

/** Restart with RESTART_BANS permanent bans: seconds until the set holds them, and until fail2ban lists them. */
function benchRestart(state: LabState): Figure[] {
    const host = state.hosts[0];
    sh(host, `fail2ban-client stop >/dev/null\n${seedScript(RESTART_BANS)}\nfail2ban-client start >/dev/null`, 300_000);
    const waitFor = (what: string, check: string) => `until ${check}; do sleep 0.1; done; echo "${what} $(date +%s.%N)"`;
    const sets: number[] = [];
    const listed: number[] = [];
    for (let run = 0; run < RUNS; run++) {
        const output = sh(
            host,
            `start=$(date +%s.%N); fail2ban-client restart >/dev/null; ${waitFor("set", `[ "$(ipset list -t ${permanentSet} 2>/dev/null | sed -n 's/Number of entries: //p')" = ${RESTART_BANS} ]`)}; ${waitFor("listed", `fail2ban-client status ${PERMANENT_JAIL} 2>/dev/null | grep -q "Currently banned:.${RESTART_BANS}$"`)}; echo "start $start"`,
            300_000,
        );
        const at = Object.fromEntries(
            output
                .trim()
                .split("\n")
                .map((line) => line.split(" "))
                .map(([name, time]) => [name, Number(time)]),
        );
        sets.push(at.set - at.start);
        listed.push(at.listed - at.start);
    }
    return [
        // The target is on enforcement (every ban in the set); fail2ban's own bookkeeping of the
        // restored bans (one log line and ticket each, in its actions thread) follows.
        summarize(`fail2ban restart, ${RESTART_BANS} permanent bans: all in the set`, "s", sets, 10),
        summarize(`fail2ban restart, ${RESTART_BANS} permanent bans: all listed by fail2ban`, "s", listed),
    ];
}

function stackFile(state: LabState, dir: string, blocklist?: string): string {
    const path = join(dir, blocklist ? "with-list" : "base", `Pulumi.${LAB_STACK}.yaml`);
    mkdirSync(dirname(path), { recursive: true });
    const document = benchEnvironment(state);
    if (blocklist) document.config["mor-harden:firewall"] = { ...document.config["mor-harden:firewall"], blocklists: [{ name: "bench", file: blocklist }] };
    writeFileSync(path, stringify(document));
    return path;
}

const seconds = (samples: { seconds: number }[]) => samples.map((sample) => sample.seconds);

/** `plain` is a second host hardened alike, without lists: its drift is timed run by run beside the list host's. */
function benchBlocklist(state: LabState, plain: LabState, dir: string): Figure[] {
    const list = join(dir, "bench.list");
    const entries = addresses(LIST_ENTRIES, 0);
    // The change: one more address, then back (each apply is a one-line change).
    const write = (changed: boolean) => writeFileSync(list, `${(changed ? [...entries, benchAddress(LIST_ENTRIES + 10)] : entries).join("\n")}\n`);
    write(false);
    const plainStack = stackFile(plain, join(dir, "plain"));
    const stack = stackFile(state, dir, list);
    const first = seconds(runner(state, "apply", 1, stack));
    // Side by side, one process an apply, as `mor-harden apply` runs (each reads and renders the
    // list once): a no-change apply, then a one-line change (one address added, then removed again).
    const noChange: number[] = [];
    const oneLine: number[] = [];
    for (let run = 0; run < PAIRS; run++) {
        noChange.push(...seconds(runner(state, "apply", 1, stack)));
        write(run % 2 === 0);
        oneLine.push(...seconds(runner(state, "apply", 1, stack)));
    }
    const floor = summarize("blocklist host: floor, ssh `true`", "s", seconds(runner(state, "floor", RUNS, stack)));
    // Right after a change the set's listing is new: drift sorts it again (and writes nothing).
    const driftAfterChange = summarize(`drift with a ${LIST_ENTRIES}-entry blocklist, right after a change`, "s", seconds(runner(state, "drift", RUNS, stack)));
    // An apply that changed nothing remembered the listing: drift then only lists and hashes it.
    runner(state, "apply", 1, stack);
    // Interleaved run by run with the plain host's drift, so the shared machine's load falls on both alike.
    const withList: number[] = [];
    const withoutList: number[] = [];
    for (let run = 0; run < RUNS; run++) {
        withList.push(...seconds(runner(state, "drift", 1, stack)));
        withoutList.push(...seconds(runner(plain, "drift", 1, plainStack)));
    }
    const drift = summarize(`drift with a ${LIST_ENTRIES}-entry blocklist`, "s", withList);
    const plainDrift = summarize("drift without blocklists (a second host, interleaved)", "s", withoutList);
    const unchanged = summarize(`no-change apply, ${LIST_ENTRIES}-entry blocklist`, "s", noChange);
    const changed = summarize(`one-line change to a ${LIST_ENTRIES}-entry blocklist`, "s", oneLine);
    return [
        summarize(`first apply of a ${LIST_ENTRIES}-entry blocklist (every concern)`, "s", first, 5),
        unchanged,
        changed,
        ratio("one-line change / no-change apply", changed, unchanged, 1.5),
        floor,
        plainDrift,
        driftAfterChange,
        drift,
        ratio("drift with the blocklist / floor", drift, floor, 1.5),
        ratio("drift with the blocklist / drift without", drift, plainDrift, 1.5),
    ];
}

export async function benchBans(): Promise<Figure[]> {
    return withBenchLab("mhs", async (dir, prefix) => {
        process.env.MOR_HARDEN_CACHE = join(dir, "cache");
        const lab = await labUp(dir, parts.has("blocklist") ? 2 : 1, prefix);
        // The figures' host; a second one only as the blocklist drift's plain twin.
        const state = { ...lab, hosts: lab.hosts.slice(0, 1) };
        const setup = runner(lab, "setup", 1, stackFile(lab, dir));
        if (setup.some((sample) => sample.failures > 0)) throw new Error("the first apply failed");
        const figures: Figure[] = [];
        if (parts.has("packet")) figures.push(...benchPacketPath(state));
        if (parts.has("restart")) {
            figures.push(...benchRestart(state));
            // The restart's bans lifted (through fail2ban), so the blocklist figures see a plain host.
            sh(state.hosts[0], "fail2ban-client unban --all >/dev/null", 300_000);
        }
        printTable(figures);
        if (parts.has("blocklist")) figures.push(...benchBlocklist(state, { ...lab, hosts: lab.hosts.slice(1) }, dir));
        return figures;
    });
}
