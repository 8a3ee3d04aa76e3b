// fail2ban.ignorePeers without a lab: the jail lines as fail2ban itself reads them, the script
// judged by shellcheck, and the script run against Asterisk files in a scratch directory with a
// stand-in database client (the real MariaDB is the lab test's, test/fail2ban/peers.test.ts).
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { IGNORE_PEERS_SCRIPT, ignorePeersScript, JAIL_FILE, renderFail2ban } from "../../src/fail2ban/render";
import { jailNames, PEERS_DEFAULTS } from "../../src/fail2ban/schema";
import { parseHostConfig } from "../../src/config/schema";
import { fail2banConfigWith } from "../helpers/fail2ban-regex";
import { minimalConfig, minimalRaw, renderInputFor } from "../helpers/fixtures";

const PASSWORD = 'Zq8;"w$x`y';

describe("fail2ban.ignorePeers: the jails", () => {
    it("every jail (recidive too) asks the ignore command, its answers cached (fail2ban-client -d)", async () => {
        const plan = renderFail2ban(await renderInputFor(minimalConfig({ fail2ban: { peers: { cacheTime: "5m" } } })));
        const script = plan.artifacts.find((artifact) => artifact.path === IGNORE_PEERS_SCRIPT);
        assert.ok(script, "the script is an artifact");
        assert.equal(script.mode, "0700");
        assert.ok(plan.validate.includes(`sh -n ${IGNORE_PEERS_SCRIPT}`));
        const config = fail2banConfigWith(plan.artifacts);
        try {
            const dump = execFileSync("fail2ban-client", ["-c", config.dir, "-d"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
            for (const jail of [...jailNames, "recidive"]) {
                assert.ok(dump.includes(`['set', '${jail}', 'ignorecommand', '${IGNORE_PEERS_SCRIPT} <ip>']`), `${jail}: ignorecommand`);
                assert.ok(dump.includes(`['set', '${jail}', 'ignorecache', 'key="<ip>", max-count=10000, max-time=300']`), `${jail}: ignorecache`);
            }
        } finally {
            config.cleanup();
        }
    });

    it("fail2ban.ignorePeers: false asks no command and installs no script", async () => {
        const plan = renderFail2ban(await renderInputFor(minimalConfig({ fail2ban: { ignorePeers: false } })));
        assert.ok(!plan.artifacts.some((artifact) => artifact.path === IGNORE_PEERS_SCRIPT));
        assert.doesNotMatch(plan.artifacts.find((artifact) => artifact.path === JAIL_FILE)!.content, /^(ignorecommand|ignorecache) =/m);
    });

    it("defaults: on, /etc/asterisk, 120 s; bad values name the key", () => {
        const config = parseHostConfig(minimalRaw());
        assert.equal(config.fail2ban.ignorePeers, true);
        assert.deepEqual(config.fail2ban.peers, PEERS_DEFAULTS);
        assert.throws(() => parseHostConfig(minimalRaw({ fail2ban: { peers: { asteriskDir: "etc/asterisk" } } })), /fail2ban\.peers\.asteriskDir/);
        assert.throws(() => parseHostConfig(minimalRaw({ fail2ban: { peers: { cacheTime: "soon" } } })), /fail2ban\.peers\.cacheTime/);
        assert.throws(() => parseHostConfig(minimalRaw({ fail2ban: { ignorePeers: "yes" } })), /fail2ban\.ignorePeers/);
        assert.throws(() => parseHostConfig(minimalRaw({ fail2ban: { peers: { database: "no" } } })), /fail2ban\.peers\.database/);
        assert.equal(PEERS_DEFAULTS.staleAfter, 86400);
        assert.equal(parseHostConfig(minimalRaw({ fail2ban: { peers: { staleAfter: "6h" } } })).fail2ban.peers.staleAfter, 21600);
        assert.throws(() => parseHostConfig(minimalRaw({ fail2ban: { peers: { staleAfter: "never" } } })), /fail2ban\.peers\.staleAfter/);
    });

    it("the script is shellcheck-clean (sh and bash)", () => {
        const work = mkdtempSync(join(tmpdir(), "mor-harden-peers-sc-"));
        try {
            const path = join(work, "ignore-peer");
            writeFileSync(path, ignorePeersScript("production", PEERS_DEFAULTS));
            for (const shell of ["sh", "bash"]) {
                const run = spawnSync("shellcheck", ["-s", shell, path], { encoding: "utf8" });
                assert.equal(run.status, 0, `${shell}: ${run.stdout}`);
            }
        } finally {
            rmSync(work, { recursive: true, force: true });
        }
    });
});

describe("fail2ban.ignorePeers: the script on Asterisk files", () => {
    let work: string;
    let asterisk: string;
    let state: string;
    let script: string;
    let env: NodeJS.ProcessEnv;

    /** Runs the script for an address: true when it says ignore (exit 0), false for 1; anything else fails. */
    const ignored = (address: string) => {
        const run = spawnSync("sh", [script, address], { encoding: "utf8", timeout: 30_000, env });
        assert.ok(run.status === 0 || run.status === 1, `exit ${run.status}: ${run.stderr}`);
        return run.status === 0;
    };
    /** The lists are read again at the next call (as when cacheTime has passed). */
    const expire = () => utimesSync(join(state, "stamp"), new Date(0), new Date(0));
    const logged = () => readFileSync(join(work, "log"), "utf8");
    /** What the stand-in answers next: these hosts (whole, or `cut` short as a client may leave them), or a failure. */
    const setDatabase = (rows: string[] | "down" | "kill" | "hang", cut: "half" | "gap" | "full-disk" | "" = "") => {
        writeFileSync(join(work, "rows"), typeof rows === "string" ? `${rows}\n` : rows.map((row) => Buffer.from(row).toString("hex")).join("\n") + "\n");
        writeFileSync(join(work, "cut"), cut);
    };

    before(() => {
        work = mkdtempSync(join(tmpdir(), "mor-harden-peers-"));
        asterisk = join(work, "asterisk");
        state = join(work, "state");
        mkdirSync(join(asterisk, "sip.d"), { recursive: true });
        writeFileSync(
            join(asterisk, "sip.conf"),
            [
                "[general]",
                "allowguest=no",
                "#include sip_custom.conf",
                "[1001]",
                "type=friend",
                "host=dynamic",
                "[carrier]",
                "type=peer",
                "host = 192.0.2.7 ; the carrier",
                "[pbx-named]",
                "host=pbx.example.com",
                "",
            ].join("\n"),
        );
        writeFileSync(join(asterisk, "sip_custom.conf"), ["[trunk](!)", "host=[2001:DB8:0::7]", '#tryinclude "sip.d/*.conf"', ""].join("\n"));
        writeFileSync(join(asterisk, "sip.d", "more.conf"), "[pbx2]\nhost=198.51.100.77\n");
        writeFileSync(join(asterisk, "extconfig.conf"), "[settings]\nsippeers => mysql,general,devices\n");
        writeFileSync(
            join(asterisk, "res_config_mysql.conf"),
            `[general]\ndbhost = localhost\ndbname = mor\ndbuser = mor\ndbpass = ${PASSWORD.replace(/;/g, "\\;")}\n`,
        );
        // The host's client, standing in: notes its arguments and its option file's mode and
        // content, then answers the query (the rows of $WORK/rows, hex as HEX(host) gives them,
        // then "end N") or fails. $WORK/cut makes it exit 0 having written part of its answer,
        // as a client does that is killed in a way its caller cannot see or does not check its
        // writes: "half" (the first half of the rows, no end row), "gap" (a row lost in the
        // middle), "full-disk" (its output file limited to 1 KiB, write errors ignored: EFBIG
        // as ENOSPC would be on a full disk).
        const bin = join(work, "bin");
        mkdirSync(bin);
        writeFileSync(
            join(bin, "mariadb"),
            [
                "#!/bin/sh",
                'printf "%s\\n" "$*" >> "$WORK/args"',
                'option=${1#--defaults-extra-file=}; stat -c %a "$option" > "$WORK/mode"; cat "$option" > "$WORK/option-file"',
                'if grep -qx down "$WORK/rows"; then echo "ERROR 2002 (HY000): Can\'t connect to local server" >&2; exit 1; fi',
                // "kill": the script killed -9 mid-query (its parent is timeout, whose parent is the script).
                'if grep -qx kill "$WORK/rows"; then kill -9 "$(ps -o ppid= -p "$PPID" | tr -d " ")"; exit 1; fi',
                // "hang": a query that does not return until the test says so (bounded: 60 s at most).
                'if grep -qx hang "$WORK/rows"; then : > "$WORK/querying"; n=0; while [ ! -e "$WORK/release" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done; exit 1; fi',
                'total=$(wc -l < "$WORK/rows")',
                'case $(cat "$WORK/cut") in',
                '    half) head -n $((total / 2)) "$WORK/rows" ;;',
                '    gap) sed 2d "$WORK/rows"; echo "end $total" ;;',
                '    full-disk) trap \'\' XFSZ; ulimit -f 2; cat "$WORK/rows"; echo "end $total" ;;',
                '    *) cat "$WORK/rows"; echo "end $total" ;;',
                "esac",
                "exit 0",
                "",
            ].join("\n"),
        );
        writeFileSync(join(bin, "logger"), '#!/bin/sh\nprintf "%s\\n" "$*" >> "$WORK/log"\n');
        for (const name of ["mariadb", "logger"]) chmodSync(join(bin, name), 0o755);
        writeFileSync(join(work, "log"), "");
        script = join(work, "ignore-peer");
        writeFileSync(script, ignorePeersScript("production", { ...PEERS_DEFAULTS, asteriskDir: asterisk }, state));
        mkdirSync(join(work, "tmp"));
        env = { PATH: `${bin}:${process.env.PATH}`, WORK: work, TMPDIR: join(work, "tmp") };
    });
    after(() => rmSync(work, { recursive: true, force: true }));

    it("ignores sip.conf's static peers (includes, templates, [IPv6]) and the database's, nothing else", () => {
        setDatabase(["203.0.113.60", "dynamic", "2001:db8:0:0::60", "::ffff:203.0.113.61", "trunk.example.net", "$(touch /tmp/pwned)", "0.0.0.0"]);
        for (const peer of ["192.0.2.7", "2001:db8::7", "198.51.100.77", "203.0.113.60", "2001:db8::60", "203.0.113.61"])
            assert.equal(ignored(peer), true, peer);
        for (const other of ["203.0.113.66", "192.0.2.8", "0.0.0.0", "2001:db8::66"]) assert.equal(ignored(other), false, other);
        for (const bad of ["", "192.0.2.7;id", "192.0.2.7 203.0.113.66", "-e", "pbx.example.com"]) assert.equal(ignored(bad), false, JSON.stringify(bad));
        assert.match(logged(), /peers named by host name are not ignored .*pbx\.example\.com/);
        assert.match(logged(), /trunk\.example\.net/);
    });

    it("the password reaches the client only in a private option file, removed after", () => {
        const args = readFileSync(join(work, "args"), "utf8");
        assert.ok(!args.includes(PASSWORD) && !args.includes("Zq8"), "not on the command line");
        assert.match(
            args,
            /^--defaults-extra-file=\S+\/client\.cnf --connect-timeout=5 --batch --skip-column-names -e SELECT h FROM \(SELECT 0 AS k, HEX\(host\) AS h FROM devices WHERE/m,
        );
        assert.equal(readFileSync(join(work, "mode"), "utf8").trim(), "600");
        assert.match(readFileSync(join(work, "option-file"), "utf8"), /^password="Zq8;\\"w\$x`y"$/m);
        assert.deepEqual(readdirSync(join(work, "tmp")), [], "nothing left in TMPDIR");
        assert.equal(statSync(state).mode & 0o777, 0o700);
        for (const name of readdirSync(state)) assert.ok(!readFileSync(join(state, name), "utf8").includes("Zq8"), `${name} holds no password`);
    });

    it("a kill -9 mid-query leaves the option file only in the private state directory, and the next read removes it", () => {
        setDatabase("kill");
        expire();
        const killed = spawnSync("sh", [script, "203.0.113.60"], { encoding: "utf8", timeout: 30_000, env });
        assert.equal(killed.signal, "SIGKILL", `the stand-in killed the script: ${killed.status} ${killed.stderr}`);
        assert.deepEqual(readdirSync(join(work, "tmp")), [], "nothing in TMPDIR (the password would stay there for good)");
        const left = readdirSync(state).filter((name) => name.startsWith("client."));
        assert.equal(left.length, 1, "the killed read's option file is in the state directory");
        assert.equal(statSync(state).mode & 0o777, 0o700);
        setDatabase(["203.0.113.60"]);
        expire();
        assert.equal(ignored("203.0.113.60"), true);
        assert.deepEqual(
            readdirSync(state).filter((name) => name.startsWith("client.")),
            [],
            "swept by the next read",
        );
    });

    it("a hung query holds no other call: with lists read, they answer from those at once", async () => {
        setDatabase("hang");
        rmSync(join(work, "querying"), { force: true });
        rmSync(join(work, "release"), { force: true });
        expire();
        const first = spawn("sh", [script, "203.0.113.60"], { env, stdio: "ignore" });
        const firstExit = new Promise<number | null>((resolve) => first.on("exit", (code) => resolve(code)));
        try {
            for (let i = 0; i < 300 && !existsSync(join(work, "querying")); i++) await new Promise((resolve) => setTimeout(resolve, 100));
            assert.ok(existsSync(join(work, "querying")), "the first call is in its query");
            // The script's own wait for the lock is 30 s: a call that waited would be cut off here.
            const second = spawnSync("sh", [script, "203.0.113.60"], { encoding: "utf8", timeout: 15_000, env });
            assert.equal(second.status, 0, `answered from the last lists while the query hangs: ${second.status} ${second.signal} ${second.stderr}`);
            assert.ok(!existsSync(join(work, "release")) && first.exitCode === null, "the first call still in its query");
        } finally {
            writeFileSync(join(work, "release"), "");
            assert.equal(await firstExit, 0, "the first call, its query failed, keeps the last list");
        }
    });

    it("reads the database only when the lists are older than cacheTime: a device added is ignored then", () => {
        const queries = () => readFileSync(join(work, "args"), "utf8").split("\n").filter(Boolean).length;
        const before = queries();
        setDatabase(["203.0.113.60", "203.0.113.62"]);
        assert.equal(ignored("203.0.113.62"), false, "the list is fresh: not read again");
        assert.equal(ignored("203.0.113.99"), false);
        assert.equal(queries(), before, "no query while fresh");
        expire();
        assert.equal(ignored("203.0.113.62"), true, "read again after cacheTime");
        assert.equal(queries(), before + 1);
    });

    it("the database down: its last list stays ignored and the log says why; never read: only sip.conf's peers", () => {
        setDatabase("down");
        expire();
        assert.equal(ignored("203.0.113.62"), true, "the last list read");
        assert.equal(ignored("192.0.2.7"), true, "sip.conf is read again");
        assert.equal(ignored("203.0.113.66"), false, "never everyone");
        assert.match(
            logged(),
            /MOR's database not read, the peers it listed at .* stay ignored \(for 86400 s after that read at most\): table devices \(section general of res_config_mysql\.conf\): ERROR 2002/,
        );
        assert.ok(!logged().includes("Zq8"), "the log holds no password");
        setDatabase(["203.0.113.63"]);
        expire();
        assert.equal(ignored("203.0.113.63"), true);
        assert.match(logged(), /MOR's database read again: 1 static peers/);
        // A host whose database was never read.
        rmSync(state, { recursive: true, force: true });
        setDatabase("down");
        assert.equal(ignored("203.0.113.63"), false);
        assert.equal(ignored("198.51.100.77"), true);
        assert.match(logged(), /never read before: only sip\.conf's peers are ignored/);
    });

    it("an answer cut short (exit 0, half the rows, a row lost, a write that failed) never replaces the list read whole", () => {
        // Enough rows that the first half, and the first KiB, leave some out.
        const many = Array.from({ length: 100 }, (_, i) => `2001:db8:1::${(i + 1).toString(16)}`);
        setDatabase(many);
        expire();
        assert.equal(ignored("2001:db8:1::64"), true, "read whole: the last row's peer is ignored");
        const whole = readFileSync(join(state, "database"), "utf8");
        for (const cut of ["half", "gap", "full-disk"] as const) {
            writeFileSync(join(work, "log"), "");
            setDatabase(many, cut);
            expire();
            assert.equal(ignored("2001:db8:1::64"), true, `${cut}: the peers the cut answer left out stay ignored`);
            assert.equal(ignored("2001:db8:1::2"), true, `${cut}: and the others`);
            assert.equal(readFileSync(join(state, "database"), "utf8"), whole, `${cut}: the list is the one read whole`);
            assert.match(logged(), /MOR's database not read, the peers it listed at .* stay ignored .*: table devices .*the answer was cut short/, cut);
            assert.ok(!existsSync(join(state, "database.new")), `${cut}: no half-written list left`);
        }
        setDatabase(["203.0.113.63"]);
        expire();
        assert.equal(ignored("203.0.113.63"), true, "read whole again: the new list replaces it");
        assert.equal(ignored("2001:db8:1::64"), false);
    });

    it("the database down longer than staleAfter: its last list is no longer used, sip.conf's still is; read again, it is", () => {
        setDatabase(["203.0.113.63"]);
        expire();
        assert.equal(ignored("203.0.113.63"), true);
        setDatabase("down");
        writeFileSync(join(work, "log"), "");
        // Read a second short of staleAfter ago: still used.
        const readAgo = (seconds: number) => {
            const at = new Date(Date.now() - seconds * 1000);
            utimesSync(join(state, "database"), at, at);
        };
        readAgo(PEERS_DEFAULTS.staleAfter - 60);
        expire();
        assert.equal(ignored("203.0.113.63"), true, "younger than staleAfter: still ignored");
        assert.match(logged(), /stay ignored \(for 86400 s after that read at most\)/);
        readAgo(PEERS_DEFAULTS.staleAfter + 1);
        expire();
        assert.equal(ignored("203.0.113.63"), false, "older than staleAfter: a device deleted meanwhile is bannable again");
        assert.equal(ignored("192.0.2.7"), true, "sip.conf's peers still ignored");
        assert.match(
            logged(),
            /its last list \(read at .*\) is older than 86400 s \(fail2ban\.peers\.staleAfter\): only sip\.conf's peers are ignored: .*ERROR 2002/,
        );
        expire();
        assert.equal(ignored("203.0.113.63"), false, "and stays so while the database is down");
        setDatabase(["203.0.113.63"]);
        expire();
        assert.equal(ignored("203.0.113.63"), true, "read again: ignored again");
        assert.ok(!existsSync(join(state, "database.stale")));
    });

    it("fail2ban.peers.database: false (customers who can set a device's host): sip.conf's peers only, no query", () => {
        const sipOnly = join(work, "ignore-peer-sip-only");
        const sipOnlyState = join(work, "state-sip-only");
        writeFileSync(sipOnly, ignorePeersScript("production", { ...PEERS_DEFAULTS, asteriskDir: asterisk, database: false }, sipOnlyState));
        setDatabase(["203.0.113.64"]);
        const queries = () => readFileSync(join(work, "args"), "utf8").split("\n").filter(Boolean).length;
        const before = queries();
        const run = (address: string) => spawnSync("sh", [sipOnly, address], { encoding: "utf8", timeout: 30_000, env }).status;
        assert.equal(run("203.0.113.64"), 1, "a device's host is not ignored");
        assert.equal(run("192.0.2.7"), 0, "sip.conf's peer is");
        assert.equal(queries(), before, "the database is not asked");
    });

    it("no realtime table mapped: sip.conf's peers only, and no error", () => {
        writeFileSync(join(asterisk, "extconfig.conf"), "[settings]\n;sippeers => mysql,general,devices\n");
        writeFileSync(join(work, "log"), "");
        expire();
        assert.equal(ignored("192.0.2.7"), true);
        assert.equal(ignored("203.0.113.63"), false);
        assert.doesNotMatch(logged(), /database/);
    });
});
