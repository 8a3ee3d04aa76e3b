// mor-harden's ipset ban action under a real fail2ban-server, in a private network namespace
// (its iptables rules and ipsets are its own; no traffic leaves it). No lab: one fail2ban-server
// with one permanent jail, its socket, database and ban journal in a temporary directory.
// Review findings (branch review/bans-audit): each test is a scenario where the sets and
// fail2ban's own list of bans disagree, or a set cannot take a ban.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { BAN_ACTION, banActionLine, banActionSource } from "../../src/fail2ban/ban-action";
import { requires } from "../helpers/needs";

const have = (tool: string) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;
const skip = requires(
    "root, fail2ban, ipset, iptables and unshare",
    () => process.getuid?.() === 0 && ["fail2ban-server", "fail2ban-client", "ipset", "iptables", "unshare"].every(have),
);

const dirs: string[] = [];
after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A fail2ban configuration directory with one permanent jail `t` banning through mor-harden's action (`actionOptions` added to those of its rendered line). */
function setup(actionOptions = ""): string {
    const dir = mkdtempSync(join(tmpdir(), "morh-ban-action-"));
    dirs.push(dir);
    for (const sub of ["conf/action.d", "conf/filter.d", "journal", "log"]) mkdirSync(join(dir, sub), { recursive: true });
    execFileSync("sh", ["-c", `cp /etc/fail2ban/filter.d/common.conf ${dir}/conf/filter.d/ && cp /etc/fail2ban/paths-*.conf ${dir}/conf/`]);
    writeFileSync(join(dir, `conf/action.d/${BAN_ACTION}.py`), banActionSource());
    writeServerConf(dir);
    writeFileSync(join(dir, "conf/filter.d/t.conf"), "[Definition]\nfailregex = ^FAIL <HOST>$\ndatepattern = {NONE}\n");
    writeFileSync(join(dir, "log/t.log"), "");
    writeJail(dir, "", actionOptions);
    return dir;
}

/** fail2ban.conf: the server's log, socket and database (`dbfile`: its own file unless given) in `dir`. */
function writeServerConf(dir: string, dbfile = `${dir}/f2b.sqlite3`): void {
    writeFileSync(
        join(dir, "conf/fail2ban.conf"),
        `[Definition]\nloglevel = INFO\nlogtarget = ${dir}/log/f2b.log\nsocket = ${dir}/f2b.sock\npidfile = ${dir}/f2b.pid\ndbfile = ${dbfile}\ndbpurgeage = 1d\n`,
    );
}

function writeJail(dir: string, extra: string, actionOptions = ""): void {
    writeFileSync(
        join(dir, "conf/jail.local"),
        `[t]\nenabled = true\nfilter = t\nbackend = polling\nlogpath = ${dir}/log/t.log\nmaxretry = 1\nfindtime = 600\nbantime = -1\n${extra}action = ${banActionLine("t", -1, join(dir, "journal")).replace(/\]$/, `${actionOptions}]`)}\n`,
    );
}

/**
 * Runs `body` (shell) in a new network namespace with `c` (fail2ban-client of this server),
 * `members` (the IPv4 set's members, sorted, one line), `banned` (fail2ban's bans, sorted, one
 * line), `journaled` (the addresses the journal holds banned, sorted, one line), `matched`
 * (whether INPUT matches the set), `started` (start, the restore done), `stopped` (stop),
 * `banned_then_stopped ADDRESS...` (start, ban, stop) and `sql STATEMENT` (on the stopped server's
 * database); the server is always stopped at the end.
 */
function inNamespace(dir: string, body: string): string {
    const script = `
c() { fail2ban-client -c ${dir}/conf -s ${dir}/f2b.sock -p ${dir}/f2b.pid "$@"; }
members() { ipset list morh-ban-t-4 2>/dev/null | sed '1,/^Members:/d' | sort | tr '\\n' ' '; echo; }
banned() { c get t banip | tr ' ' '\\n' | sort | tr '\\n' ' '; echo; }
journaled() { awk 'NF != 2 { next } $1 == "-" { delete held[$2]; next } { held[$2] = 1 } END { for (address in held) print address }' ${dir}/journal/t.bans 2>/dev/null | sort | tr '\\n' ' '; echo; }
matched() { iptables -w -S INPUT | grep -q -- '--match-set morh-ban-t-4 src' && echo yes || echo no; }
wait_started() { for i in $(seq 50); do [ "$(matched)" = yes ] && return 0; sleep 0.1; done; return 1; }
started() { c start >/dev/null; wait_started; sleep 1; }
stopped() { c stop >/dev/null; sleep 0.5; }
banned_then_stopped() { c start >/dev/null; wait_started; c set t banip "$@" >/dev/null; sleep 0.5; stopped; }
sql() { python3 -c 'import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute(sys.argv[2]); db.commit()' ${dir}/f2b.sqlite3 "$1"; }
trap 'c stop >/dev/null 2>&1' EXIT
${body}
`;
    const result = spawnSync("unshare", ["-n", "bash", "-c", script], { encoding: "utf8", timeout: 120_000 });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    return result.stdout;
}

const lines = (output: string) =>
    Object.fromEntries(
        output
            .split("\n")
            .filter((line) => line.includes("="))
            .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1).trim()]),
    );

describe("mor-harden's ipset action under fail2ban-server", { skip }, () => {
    it("keeps its action, sets and INPUT rule across `fail2ban-client reload`, and bans after it", () => {
        const dir = setup();
        const out = lines(
            inNamespace(
                dir,
                `c start >/dev/null; wait_started
c set t banip 192.0.2.1 >/dev/null; sleep 0.5
c reload >/dev/null; sleep 1
c set t banip 192.0.2.2 >/dev/null; sleep 0.5
echo "actions=$(c get t actions | tail -n +2 | tr -d ' ')"
echo "matched=$(matched)"
echo "members=$(members)"`,
            ),
        );
        assert.equal(out.actions, BAN_ACTION, "the jail still has the ban action after a reload");
        assert.equal(out.matched, "yes", "INPUT still matches the set after a reload");
        assert.equal(out.members, "192.0.2.1 192.0.2.2", "both bans are in the set");
    });

    it("puts a ban fail2ban restores from its database into the set, even when the journal misses it", () => {
        const dir = setup();
        const out = lines(
            inNamespace(
                dir,
                `banned_then_stopped 192.0.2.1 192.0.2.2
# the journal lost its last line (a full disk, a crash before the write, a ban made while the action was gone)
sed -i '/192.0.2.2/d' ${dir}/journal/t.bans
started
echo "banned=$(banned)"
echo "members=$(members)"`,
            ),
        );
        assert.equal(out.banned, "192.0.2.1 192.0.2.2");
        assert.equal(out.members, out.banned, "the set holds what fail2ban says is banned");
    });

    it("does not keep banning an address put in ignoreip after its ban (fail2ban does not restore it and cannot unban it)", () => {
        const dir = setup();
        const before = lines(
            inNamespace(
                dir,
                `c start >/dev/null; wait_started
c set t banip 192.0.2.5 192.0.2.6 >/dev/null; sleep 0.5
echo "members=$(members)"`,
            ),
        );
        assert.equal(before.members, "192.0.2.5 192.0.2.6");
        writeJail(dir, "ignoreip = 127.0.0.1/8 192.0.2.5\n");
        const out = lines(
            inNamespace(
                dir,
                `started
echo "banned=$(banned)"
echo "unban=$(c set t unbanip 192.0.2.5 2>&1 | tail -n 1)"
echo "members=$(members)"`,
            ),
        );
        assert.equal(out.banned, "192.0.2.6");
        assert.equal(out.members, "192.0.2.6", "the ignored address is not in the set");
    });

    it("drops from the set and the journal the bans fail2ban no longer holds: one lifted from its database while it was down, all when the database is gone", () => {
        const dir = setup();
        const out = lines(
            inNamespace(
                dir,
                `banned_then_stopped 192.0.2.1 192.0.2.2 192.0.2.3
sql "DELETE FROM bans WHERE ip = '192.0.2.2'"; sql "DELETE FROM bips WHERE ip = '192.0.2.2'"
started
echo "lifted_banned=$(banned)"
echo "lifted_members=$(members)"
echo "lifted_journaled=$(journaled)"
echo "lifted_logged=$(grep -c 'WARNING.*morh-ban-t-4/-6: 1 ban(s) of the journal fail2ban does not hold removed (its database lost them; all in ${dir}/journal/t.dropped): 192.0.2.2$' ${dir}/log/f2b.log)"
echo "lifted_dropped=$(cat ${dir}/journal/t.dropped)"
stopped
rm ${dir}/f2b.sqlite3
started
echo "gone_banned=$(banned)"
echo "gone_members=$(members)"
echo "gone_journaled=$(journaled)"
echo "matched=$(matched)"
c set t banip 192.0.2.4 >/dev/null; sleep 0.5
echo "new_members=$(members)"`,
            ),
        );
        assert.equal(out.lifted_banned, "192.0.2.1 192.0.2.3");
        assert.equal(out.lifted_members, "192.0.2.1 192.0.2.3", "the ban fail2ban does not hold is not enforced");
        assert.equal(out.lifted_journaled, "192.0.2.1 192.0.2.3");
        assert.equal(out.lifted_logged, "1", "fail2ban's log names the address removed");
        assert.equal(out.lifted_dropped, "192.0.2.2", "listed for an operator who wants it back");
        assert.equal(out.gone_banned, "");
        assert.equal(out.gone_members, "", "no ban fail2ban could not lift");
        assert.equal(out.gone_journaled, "");
        assert.equal(out.matched, "yes");
        assert.equal(out.new_members, "192.0.2.4", "bans after it work");
    });

    it("keeps every ban, and logs why, when it cannot read which bans fail2ban holds", () => {
        const dir = setup();
        const out = lines(
            inNamespace(
                dir,
                `banned_then_stopped 192.0.2.1 192.0.2.2
# fail2ban's table of current bans gone: neither fail2ban nor the action can read it
sql "DROP TABLE bips"
started
echo "members=$(members)"
echo "journaled=$(journaled)"
echo "errors=$(grep -c 'ERROR.*morh-ban-t-4/-6: bans not compared with fail2ban.s (.*bips.*): all 2 loaded kept' ${dir}/log/f2b.log)"`,
            ),
        );
        assert.equal(out.members, "192.0.2.1 192.0.2.2", "fail closed: the bans stay");
        assert.equal(out.journaled, "192.0.2.1 192.0.2.2");
        assert.equal(out.errors, "1");
    });

    it("drops the journal's bans at a restart when fail2ban's database is in memory (it restores none)", () => {
        const dir = setup();
        writeServerConf(dir, ":memory:");
        const out = lines(
            inNamespace(
                dir,
                `c start >/dev/null; wait_started
c set t banip 192.0.2.1 192.0.2.2 >/dev/null; sleep 0.5
echo "members=$(members)"
stopped
started
echo "restarted_banned=$(banned)"
echo "restarted_members=$(members)"
echo "restarted_journaled=$(journaled)"`,
            ),
        );
        assert.equal(out.members, "192.0.2.1 192.0.2.2");
        assert.equal(out.restarted_banned, "");
        assert.equal(out.restarted_members, "");
        assert.equal(out.restarted_journaled, "");
    });

    it("hands the bans carried over from before the switch to fail2ban, which holds them across a restart and lifts them (an ignored one excepted)", () => {
        const dir = setup();
        writeJail(dir, "ignoreip = 127.0.0.1/8 192.0.2.5\n");
        // As carry-over-bans.sh leaves them: journaled, and listed for the action to hand over.
        writeFileSync(join(dir, "journal/t.bans"), "0 198.51.100.9\n0 192.0.2.5\n");
        writeFileSync(join(dir, "journal/t.carried"), "198.51.100.9\n192.0.2.5\n");
        const out = lines(
            inNamespace(
                dir,
                `started
echo "banned=$(banned)"
echo "members=$(members)"
stopped
started
echo "carried_left=$([ -e ${dir}/journal/t.carried ] && echo yes || echo no)"
echo "restarted_banned=$(banned)"
echo "restarted_members=$(members)"
c set t unbanip 198.51.100.9 >/dev/null; sleep 0.5
echo "lifted_members=$(members)"`,
            ),
        );
        assert.equal(out.banned, "198.51.100.9", "fail2ban holds the carried ban (not the ignored one)");
        assert.equal(out.members, "198.51.100.9");
        assert.equal(out.carried_left, "no", "no longer listed once fail2ban's database holds it");
        assert.equal(out.restarted_banned, "198.51.100.9", "restored from fail2ban's database");
        assert.equal(out.restarted_members, "198.51.100.9");
        assert.equal(out.lifted_members, "", "fail2ban lifts it");
    });

    it("keeps the carried-over bans fail2ban had not yet taken (still queued) when it is stopped right after the switch's start", () => {
        const dir = setup();
        // A MOR host's chain of scanner bans: thousands, each handed over as a new ban (one ipset
        // command each, in the jail's queue), written to fail2ban's database only once banned.
        const carried = Array.from({ length: 3000 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
        writeFileSync(join(dir, "journal/t.bans"), carried.map((address) => `0 ${address}\n`).join(""));
        writeFileSync(join(dir, "journal/t.carried"), carried.map((address) => `${address}\n`).join(""));
        const out = lines(
            inNamespace(
                dir,
                `c start >/dev/null; wait_started; sleep 1
stopped
started
echo "members=$(ipset list morh-ban-t-4 | sed '1,/^Members:/d' | grep -c .)"
# the hand-over takes seconds (one ipset command a ban): fail2ban holds them all once it is done
for i in $(seq 60); do [ "$(c get t banip | wc -w)" = 3000 ] && break; sleep 0.5; done
echo "banned=$(c get t banip | wc -w)"`,
            ),
        );
        assert.equal(out.members, "3000", "every carried ban is still enforced after the restart");
        assert.equal(out.banned, "3000", "and held by fail2ban");
    });

    it("loads every ban when the journal holds an address ipset cannot store (0.0.0.0 carried over from a chain)", () => {
        const dir = setup();
        const out = lines(
            inNamespace(
                dir,
                `banned_then_stopped 192.0.2.1 192.0.2.2
# carry-over-bans.sh carries a chain's -s 0.0.0.0/32 rule as it carries any other
printf '0 0.0.0.0\\n0 198.51.100.7\\n' >> ${dir}/journal/t.bans; printf '0.0.0.0\\n198.51.100.7\\n' > ${dir}/journal/t.carried
started
echo "members=$(members)"
echo "failed=$(grep -c 'Failed to start jail' ${dir}/log/f2b.log)"`,
            ),
        );
        assert.equal(out.failed, "0", "the action starts");
        assert.equal(out.members, "192.0.2.1 192.0.2.2 198.51.100.7", "the bans after the bad line are loaded too");
    });

    it("starts (INPUT rule, set loaded) when the journal's last line was torn by a crash", () => {
        const dir = setup();
        const out = lines(
            inNamespace(
                dir,
                `banned_then_stopped 192.0.2.1 198.51.100.7
printf '0 192.0.2.' >> ${dir}/journal/t.bans
started
echo "matched=$(matched)"
echo "members=$(members)"`,
            ),
        );
        assert.equal(out.matched, "yes", "INPUT matches the set");
        assert.equal(out.members, "192.0.2.1 198.51.100.7");
    });

    it("compacts the journal while it runs once its dead lines outnumber the live ones (a torn line skipped), and restarts from it", () => {
        const dir = setup(", compactlines=20");
        const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `192.0.2.${from + i}`).join(" ");
        const out = lines(
            inNamespace(
                dir,
                `c start >/dev/null; wait_started
c set t banip ${range(1, 30)} >/dev/null; sleep 0.5
# a line torn by a write that failed (a full disk)
printf '0 192.0.2.' >> ${dir}/journal/t.bans
c set t unbanip ${range(1, 25)} >/dev/null; sleep 0.5
echo "journal_lines=$(wc -l < ${dir}/journal/t.bans)"
echo "journaled=$(journaled)"
echo "leftover=$(ls ${dir}/journal | grep -c new)"
echo "members=$(members)"
stopped
started
echo "restarted_members=$(members)"
echo "restarted_banned=$(banned)"`,
            ),
        );
        const live = range(26, 30);
        // 30 bans, the torn line, 25 unbans: 56 lines uncompacted; compacted at the 11th unban (19
        // live), at the 18th (12 live), then 7 more lines.
        assert.equal(out.journal_lines, "19");
        assert.equal(out.journaled, live);
        assert.equal(out.leftover, "0", "no new journal left beside it");
        assert.equal(out.members, live);
        assert.equal(out.restarted_members, live);
        assert.equal(out.restarted_banned, live);
    });

    it("logs a ban a full set refuses as an error, without loading every ban again for it (and for each ban after it)", () => {
        const dir = setup(", maxelem=2");
        const out = lines(
            inNamespace(
                dir,
                `c start >/dev/null; wait_started
c set t banip 192.0.2.1 192.0.2.2 >/dev/null; sleep 0.5
# start() writes the journal anew (compacted): a start run again would show as another file
journal=$(stat -c %i ${dir}/journal/t.bans)
c set t banip 192.0.2.3 >/dev/null; sleep 0.5
c set t banip 192.0.2.4 >/dev/null; sleep 0.5
echo "same_journal=$([ "$(stat -c %i ${dir}/journal/t.bans)" = "$journal" ] && echo yes || echo no)"
echo "journaled=$(journaled)"
echo "members=$(members)"
echo "matched=$(matched)"
echo "errors=$(grep -c 'ERROR.*is not banned: morh-ban-t-4 refused it (ipset v[0-9.]*: Hash is full' ${dir}/log/f2b.log)"`,
            ),
        );
        assert.equal(out.same_journal, "yes", "start() was not run again");
        assert.equal(out.members, "192.0.2.1 192.0.2.2", "the set as it was");
        assert.equal(out.journaled, "192.0.2.1 192.0.2.2", "the refused bans are not journaled (fail2ban restores them, and they are tried again)");
        assert.equal(out.matched, "yes");
        assert.equal(out.errors, "2", "one error a refused ban");
    });
});
