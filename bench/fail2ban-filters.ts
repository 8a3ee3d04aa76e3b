// Each jail's filter over one generated log of a million lines, with fail2ban-regex, next to
// fail2ban's stock asterisk and sshd filters on the same log. The log mixes every line of the
// filters' own samples and of upstream's asterisk and sshd samples (matching and not), in a
// seeded random order, so every filter spends most of its time rejecting lines, as on a host.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { filterName, renderFail2ban } from "../src/fail2ban/render";
import { jailNames, type JailName } from "../src/fail2ban/schema";
import { findTemplatesDir } from "../src/render/templates";
import { fail2banConfigWith, parseSamples, UPSTREAM_SAMPLES } from "../test/helpers/fail2ban-regex";
import { minimalConfig, renderInputFor } from "../test/helpers/fixtures";
import { higherIsBetter, summarize, type Figure } from "./stats";

/** fail2ban's stock filters, as Debian ships them; sshd also in the mode ssh-iptables runs it in. */
const STOCK = ["sshd", "sshd[mode=aggressive]", "asterisk"] as const;
type Stock = (typeof STOCK)[number];
/**
 * The stock filter each of ours is held against: ssh-iptables is the stock sshd filter in
 * aggressive mode reading sshd-session too, the Asterisk jails read what the stock asterisk
 * filter reads; the rest have no stock counterpart and face the faster stock filter.
 */
function counterpart(jail: string): Stock | "fastest" {
    if (jail === "ssh-iptables") return "sshd[mode=aggressive]";
    if (jail === "asterisk-iptables" || jail === "asterisk-manager" || jail === "ast-hgc-200") return "asterisk";
    return "fastest";
}
/** Our filter may be this much slower than the stock filter it is compared with. */
const TARGET_RATIO = 1 / 0.8;

function sampleLines(): string[] {
    const ours = readdirSync(join(findTemplatesDir(), "fail2ban", "filter.d")).filter((name) => name.endsWith(".sample.log"));
    const files = [
        ...ours.map((name) => join(findTemplatesDir(), "fail2ban", "filter.d", name)),
        ...["sshd", "asterisk"].map((name) => join(UPSTREAM_SAMPLES, name)),
    ];
    return files.flatMap((path) => parseSamples(readFileSync(path, "utf8")).sections.flatMap((section) => section.lines.map((line) => line.text)));
}

/** A small seeded generator (mulberry32): the same log on every run and machine. */
function seeded(seed: number): () => number {
    return () => {
        seed = (seed + 0x6d2b79f5) | 0;
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

function generateLog(path: string, count: number): void {
    const lines = sampleLines();
    const random = seeded(20261125);
    const chunk: string[] = [];
    writeFileSync(path, "");
    for (let i = 0; i < count; i++) {
        chunk.push(lines[Math.floor(random() * lines.length)]);
        if (chunk.length === 50_000 || i === count - 1) {
            writeFileSync(path, chunk.join("\n") + "\n", { flag: "a" });
            chunk.length = 0;
        }
    }
}

/**
 * The CPU seconds (user + system) fail2ban-regex spends on the log: a filter is single-threaded
 * work, and CPU time, unlike wall time, does not grow when something else runs on the machine.
 */
function timeFilter(configDir: string, log: string, filter: string): number {
    const run = spawnSync(
        "/usr/bin/time",
        ["-f", "MORH-CPU %U %S", "fail2ban-regex", "-c", configDir, "--raw", "--print-no-missed", "--print-no-ignored", log, filter],
        { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] },
    );
    const match = /MORH-CPU ([\d.]+) ([\d.]+)/.exec(run.stderr);
    if (run.status !== 0 || !match) throw new Error(`fail2ban-regex ${filter} (exit ${run.status}): ${run.stderr}`);
    return Number(match[1]) + Number(match[2]);
}

export async function benchFail2banFilters(
    lineCount = Number(process.env.BENCH_F2B_LINES ?? 1_000_000),
    runs = Number(process.env.BENCH_F2B_RUNS ?? 3),
): Promise<Figure[]> {
    const work = mkdtempSync(join(tmpdir(), "mor-harden-bench-f2b-"));
    const config = fail2banConfigWith(renderFail2ban(await renderInputFor(minimalConfig())).artifacts);
    try {
        const log = join(work, "mixed.log");
        generateLog(log, lineCount);
        const filters = [
            ...STOCK.map((name) => ({ label: `stock ${name}`, filter: name })),
            ...jailNames.map((jail) => ({ label: jail, filter: filterName(jail) })),
        ];
        const sampleCount = sampleLines().length;
        console.error(`${lineCount} lines drawn from ${sampleCount} sample lines; ${runs} interleaved runs of ${filters.length} filters`);
        const seconds = new Map<string, number[]>();
        // Interleaved runs, so a slow moment of the machine hits every filter alike.
        for (let run = 0; run < runs; run++) {
            for (const { label, filter } of filters) {
                seconds.set(label, [...(seconds.get(label) ?? []), timeFilter(config.dir, log, filter)]);
                console.error(`fail2ban-regex ${label}: run ${run + 1}/${runs} ${seconds.get(label)!.at(-1)!.toFixed(1)} s`);
            }
        }
        const figures: Figure[] = [];
        const median = (label: string) => summarize(label, "s", seconds.get(label)!).median;
        for (const { label } of filters) {
            const rates = seconds.get(label)!.map((s) => lineCount / s);
            figures.push(higherIsBetter(summarize(`fail2ban-regex ${label}, ${lineCount} lines`, "lines/CPU-s", rates)));
        }
        const fastest = STOCK.reduce((best, name) => (median(`stock ${name}`) < median(`stock ${best}`) ? name : best));
        for (const jail of jailNames) {
            const stock = counterpart(jail) === "fastest" ? fastest : (counterpart(jail) as Stock);
            const ratios = seconds.get(jail)!.map((s) => s / median(`stock ${stock}`));
            figures.push(summarize(`${jail} CPU time / stock ${stock}`, "x", ratios, TARGET_RATIO));
        }
        return figures;
    } finally {
        config.cleanup();
        rmSync(work, { recursive: true, force: true });
    }
}

/** Where the attacker's text goes in each jail's lines (PAYLOAD), as the daemons write them. */
const PAYLOAD = "\u0000";
const ASTERISK_REQUIRE = `[2026-11-25 10:00:01] WARNING[2010][C-00000001] chan_sip.c: Received SIP INVITE with unsupported required extension: ${PAYLOAD}`;
export const craftTemplates: Record<JailName, string[]> = {
    "ssh-iptables": [
        `Nov 25 10:00:01 mor sshd[2101]: Failed password for invalid user ${PAYLOAD} from 203.0.113.66 port 40110 ssh2`,
        `Nov 25 10:00:01 mor sshd[2101]: Invalid user ${PAYLOAD} from 203.0.113.66 port 40110`,
        `Nov 25 10:00:01 mor sshd[2101]: Connection closed by invalid user ${PAYLOAD} 203.0.113.66 port 40110 [preauth]`,
    ],
    "asterisk-iptables": [
        `[2026-11-25 10:00:01] NOTICE[2010] chan_sip.c: Registration from '"${PAYLOAD}" <sip:100@192.0.2.11>' failed for '203.0.113.66:5060' - Wrong password`,
        `[2026-11-25 10:00:01] NOTICE[2011] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '"${PAYLOAD}" <sip:1@192.0.2.11>' failed for '203.0.113.66:5060' (callid: ${PAYLOAD}) - No matching endpoint found`,
        `[2026-11-25 10:00:01] SECURITY[2013] res_security_log.c: SecurityEvent="InvalidAccountID",EventTV="2026-11-25T10:00:01.000+0000",Severity="Error",Service="PJSIP",EventVersion="1",AccountID="${PAYLOAD}",SessionID="${PAYLOAD}",LocalAddress="IPV4/UDP/192.0.2.11/5060",RemoteAddress="IPV4/UDP/203.0.113.66/5060"`,
        ASTERISK_REQUIRE,
    ],
    "ast-cli-attck": [`[2026-11-25 10:00:01] NOTICE[4120][C-00000021] mor.c: Useragent: sipcli/${PAYLOAD} [203.0.113.66]`, ASTERISK_REQUIRE],
    "asterisk-manager": [
        `[2026-11-25 10:00:01] NOTICE[3011] manager.c: 203.0.113.66 tried to authenticate with nonexistent user '${PAYLOAD}'`,
        ASTERISK_REQUIRE,
    ],
    "ast-hgc-200": [`[2026-11-25 10:00:01] NOTICE[4001][C-00000001] mor.c: SIP/${PAYLOAD} hangupcause to DB: 200, [203.0.113.66]`, ASTERISK_REQUIRE],
    mor_api: [`203.0.113.66 - - [25/Nov/2026:10:00:01 +0000] "GET /billing/api/user_balance_get?u=${PAYLOAD} HTTP/1.1" 403 120 "-" "${PAYLOAD}"`],
    mor_ddos: [`203.0.113.66 - - [25/Nov/2026:10:00:01 +0000] "GET /${PAYLOAD} HTTP/1.1" 404 196 "${PAYLOAD}" "${PAYLOAD}"`],
};
/** Runs of the delimiters the filters rely on, and of the words they look for. */
export const CRAFT_ATOMS = [
    "'",
    '"',
    ")",
    "(",
    "[",
    "]",
    ": ",
    " - ",
    "' failed for '",
    "' (callid: ",
    ") - ",
    "' (",
    ',RemoteAddress="',
    '",x="',
    " from 198.51.100.1",
    " from 198.51.100.1 port 22 ssh2",
    " port 22",
    " on x",
    "../",
    "%2e%2e/",
    " hangupcause to DB: 200, [198.51.100.1]",
    "Useragent: sipcli [",
    "Incorrect hash from ",
    "198.51.100.1 ",
    "SRC=198.51.100.1 ",
    ",",
    'Service="AMI",',
    "HGC: 200 from ",
    "Hangup cause 200 src: ",
    "MORH-SIPSCAN SRC=",
    "NOTICE[1] x.c: ",
];
/** The stock filter each of ours is held against on crafted lines; MOR's jails have none. */
const craftStock = (jail: JailName): string | undefined =>
    jail === "ssh-iptables" ? "sshd[mode=aggressive]" : jail.startsWith("ast") ? "asterisk" : undefined;
/** A crafted line may cost this many times a normal line of the same size, or this much. */
const CRAFT_RATIO = 5;
const CRAFT_SECONDS = 0.002;
export const CRAFT_SIZE = 8 * 1024;

/** `template` with its payloads filled to a line of `CRAFT_SIZE` bytes with `atom` repeated (Apache's escapes for an access log). */
export function craftLine(template: string, atom: string): string {
    const slots = template.split(PAYLOAD).length - 1;
    const escape = template.includes('HTTP/1.1"') ? (text: string) => text.replace(/[\\"]/g, (c) => `\\${c}`) : (text: string) => text;
    const unit = escape(atom);
    const room = Math.floor((CRAFT_SIZE - template.length + slots) / slots);
    return template.split(PAYLOAD).join(unit.repeat(Math.max(1, Math.floor(room / unit.length))));
}

interface LineCost {
    filter: string;
    label: string;
    seconds: number;
}

/**
 * Each filter's cost per line on crafted lines of 8 KB (every template of its jail, every atom
 * repeated) against a normal line of the same size (the payload plain letters), with the stock
 * filter on the same lines beside ours: CPU time in one fail2ban process (fail2ban-line-cost.py).
 */
export async function benchCraftedLines(runs = Number(process.env.BENCH_F2B_RUNS ?? 3)): Promise<Figure[]> {
    const config = fail2banConfigWith(renderFail2ban(await renderInputFor(minimalConfig())).artifacts);
    try {
        const jobsFor = (filter: string, jail: JailName) => ({
            filter,
            lines: Object.fromEntries(
                craftTemplates[jail].flatMap((template, t) => [
                    [`${t} normal`, craftLine(template, "a")],
                    ...CRAFT_ATOMS.map((atom) => [`${t} ${JSON.stringify(atom)}`, craftLine(template, atom)]),
                ]),
            ),
        });
        const jobs = jailNames.flatMap((jail) => [
            { jail, ...jobsFor(filterName(jail), jail) },
            ...(craftStock(jail) ? [{ jail, ...jobsFor(craftStock(jail)!, jail) }] : []),
        ]);
        const costs: LineCost[][] = [];
        for (let run = 0; run < runs; run++) {
            const result = spawnSync("/usr/bin/python3", [join(__dirname, "..", "..", "bench", "fail2ban-line-cost.py")], {
                input: JSON.stringify({ config: config.dir, budget: 0.05, max: 500, jobs }),
                encoding: "utf8",
                maxBuffer: 64 * 1024 * 1024,
            });
            if (result.status !== 0) throw new Error(`fail2ban-line-cost.py (exit ${result.status}): ${result.stderr.slice(-2000)}`);
            costs.push(JSON.parse(result.stdout));
            console.error(`crafted lines: run ${run + 1}/${runs}`);
        }
        const figures: Figure[] = [];
        for (const job of jobs) {
            const label = job.filter === filterName(job.jail) ? job.jail : `stock ${job.filter} (${job.jail}'s lines)`;
            const per = (name: string) => costs.map((run) => run.find((cost) => cost.filter === job.filter && cost.label === name)!.seconds);
            const median = (values: number[]) => summarize("", "", values).median;
            // The worst line: the template and atom whose median cost is highest, against that template's normal line.
            const crafted = Object.keys(job.lines).filter((name) => !name.endsWith(" normal"));
            const worst = crafted.reduce((a, b) => (median(per(a)) >= median(per(b)) ? a : b));
            const normal = `${worst.split(" ")[0]} normal`;
            figures.push(
                higherIsBetter(
                    summarize(
                        `${label}: normal 8 KB line (template ${normal.split(" ")[0]})`,
                        "lines/CPU-s",
                        per(normal).map((s) => 1 / s),
                    ),
                ),
            );
            figures.push(
                higherIsBetter(
                    summarize(
                        `${label}: worst crafted 8 KB line (template ${worst})`,
                        "lines/CPU-s",
                        per(worst).map((s) => 1 / s),
                    ),
                ),
            );
            const ratio = summarize(
                `${label}: worst crafted / normal line`,
                "x",
                per(worst).map((s, i) => s / per(normal)[i]),
                CRAFT_RATIO,
            );
            // The target: at most 5x a normal line, or at most 2 ms a line.
            figures.push({ ...ratio, meetsTarget: ratio.median <= CRAFT_RATIO || median(per(worst)) <= CRAFT_SECONDS });
        }
        return figures;
    } finally {
        config.cleanup();
    }
}
