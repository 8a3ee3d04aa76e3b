// What makes a host's existing fail2ban exploitable, on sample files: the pattern judge over a
// table (old MOR's filters flagged, Debian's stock filters and every filter mor-harden renders
// not), fail2ban-regex proving a flagged pattern bans a forged address, the jail/filter/action
// merge order, usedns, reporting actions, cron scripts, pjproject versions, and the host script's
// new section (shellcheck, and its payload parsed back).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
    cronRuleFindings,
    enabledJails,
    fail2banExposureFindings,
    injectableFilterFindings,
    injectableReasons,
    reportedUrl,
    reportingActionFindings,
    resolveDefinition,
    usednsFindings,
} from "../../src/audit/fail2ban-config";
import { pjprojectFindings, pjprojectVersion } from "../../src/audit/pjproject";
import { asteriskPjproject, fail2banAndCronFiles, parseAuditOutput } from "../../src/audit/script";
import { renderFail2ban } from "../../src/fail2ban/render";
import { morFilters } from "../../src/lab/mor-profile";
import { minimalConfig, renderInputFor } from "../helpers/fixtures";

const SAMPLES = join(__dirname, "..", "..", "..", "test", "audit", "samples", "mor-fail2ban");
const sample = (name: string) => readFileSync(join(SAMPLES, name), "utf8");

/** The machine's /etc/fail2ban (Debian's fail2ban 1.0.2): the stock filters and jail.conf. */
function stockFail2ban(): Record<string, string> {
    const files: Record<string, string> = {};
    for (const dir of ["/etc/fail2ban", "/etc/fail2ban/jail.d", "/etc/fail2ban/filter.d", "/etc/fail2ban/action.d"]) {
        for (const name of readdirSync(dir)) {
            const path = `${dir}/${name}`;
            if (/\.(conf|local)$/.test(name) && statSync(path).isFile()) files[path] = readFileSync(path, "utf8");
        }
    }
    return files;
}

/** Old MOR's files over a stock install, as MOR's fail2ban_patches.sh and installer leave them. */
function morHost(): Record<string, string> {
    return {
        ...stockFail2ban(),
        "/etc/fail2ban/jail.conf": sample("jail.conf"),
        "/etc/fail2ban/filter.d/asterisk.conf": sample("asterisk.conf"),
        "/etc/fail2ban/filter.d/asterisk_cli.conf": sample("asterisk_cli.conf"),
        "/etc/fail2ban/action.d/sendmail-banned.conf": sample("sendmail-banned.conf"),
        "/etc/cron.d/global_grid_defense": sample("global_grid_defense.cron"),
        "/usr/local/mor/global_grid_defense.sh": sample("global_grid_defense.sh"),
    };
}

test("the pattern judge: old MOR's patterns are injectable, each for its reason", () => {
    const table: [string, RegExp][] = [
        // pionert/mor filter.d/asterisk.conf
        [String.raw`NOTICE.* .*: Failed to authenticate user .*@<HOST>.*`, /after '@'.*greedy wildcard.*not anchored/],
        [String.raw`NOTICE.* .*: Registration from '.*' failed for '<HOST>.*' - Wrong password`, /not anchored/],
        [String.raw`NOTICE.* <HOST> failed to authenticate as '.*'$`, /greedy wildcard.*not anchored/],
        // pionert/mor filter.d/mor.conf
        [String.raw`<HOST>.*mor.users`, /^[^;]*not anchored[^;]*$/],
        // anchored, but the URI host: upstream's removed pattern's flaw (fail2ban d5d1fe67)
        [String.raw`^%(__prefix_line)sNOTICE: Failed to authenticate user [^@]+@<HOST>\S*$`, /after '@'/],
        // anchored, greedy, not end-anchored
        [String.raw`^\S+ NOTICE: .*<HOST>`, /greedy wildcard/],
    ];
    for (const [regex, reason] of table) {
        const reasons = injectableReasons(regex);
        assert.match(reasons.join("; "), reason, regex);
    }
    // The MOR lab profile's own filters (src/lab/mor-profile.ts): the ones written MOR's way are flagged.
    for (const name of ["asterisk_cli", "asterisk_manager", "asterisk_hgc_200"]) assert.ok(injectableReasons(morFilters[name]).length > 0, name);
});

test("the pattern judge passes anchored patterns: lazy fields after a daemon's prefix, end anchors, upstream's forms", () => {
    for (const regex of [
        String.raw`^%(__prefix_line)sRegistration from '[^']*' failed for '<HOST>(:\d+)?' - Wrong password$`,
        String.raw`^[iI](?:llegal|nvalid) user <F-USER>.*?</F-USER> from <HOST>%(__on_port_opt)s\s*$`,
        String.raw`^<HOST> \S+ \S+ \[[^\]]*\] "[^"]*" 404\s`,
        String.raw`^NOTICE.* Useragent: sipcli.*\[<HOST>\]\s*$`,
        String.raw`^(?:.*? )?MORH-SIPSCAN .*?\bSRC=<HOST>\s`,
        "^no address here",
    ]) {
        assert.deepEqual(injectableReasons(regex), [], regex);
    }
});

test("fail2ban-regex bans the forged address on a line a flagged pattern reads, and the real one with an anchored pattern", () => {
    // The user name is the sender's: it carries a second address and the daemon's words again.
    const line =
        "[2025-06-02 09:14:04] NOTICE[2250] manager.c: 203.0.113.9 tried to authenticate with nonexistent user 'x 198.51.100.7 tried to authenticate with nonexistent user'";
    const hosts = (regex: string) => {
        const run = spawnSync("fail2ban-regex", ["-o", "<ip>", line, regex], { encoding: "utf8" });
        assert.equal(run.status, 0, run.stderr);
        return run.stdout.trim();
    };
    assert.ok(injectableReasons(morFilters.asterisk_manager).length > 0);
    assert.equal(hosts(morFilters.asterisk_manager), "198.51.100.7", "MOR's greedy pattern bans the address the sender wrote");
    const anchored = String.raw`^\[\]\s*NOTICE\[\d+\] manager\.c: <HOST> tried to authenticate with nonexistent user '[^']*'$`;
    assert.deepEqual(injectableReasons(anchored), []);
    assert.equal(hosts(anchored), "203.0.113.9");
});

test("Debian's stock filters the guide's jails build on are not flagged", () => {
    const files = stockFail2ban();
    for (const name of ["sshd", "asterisk", "recidive"]) {
        const failregex = resolveDefinition(files, "/etc/fail2ban/filter.d", `${name}[mode=aggressive]`).get("failregex")!;
        const lines = failregex.value.split("\n").filter((line) => line.trim());
        assert.ok(lines.length > 0 && lines.every((regex) => !regex.includes("%(")), `${name}: its interpolations expanded (${lines.length} patterns)`);
        for (const regex of lines) assert.deepEqual(injectableReasons(regex), [], `${name}: ${regex}`);
    }
});

test("every filter mor-harden renders passes the judge (whatever the filters are: rendered, not copied)", async () => {
    const plan = renderFail2ban(await renderInputFor(minimalConfig()));
    const files = { ...stockFail2ban() };
    for (const artifact of plan.artifacts) if (artifact.path.startsWith("/etc/fail2ban/")) files[artifact.path] = artifact.content;
    const jails = enabledJails(files).map((jail) => jail.name);
    for (const jail of ["ssh-iptables", "asterisk-iptables", "ast-cli-attck", "asterisk-manager", "ast-hgc-200", "mor_api", "mor_ddos"])
        assert.ok(jails.includes(jail), `${jail} is enabled`);
    assert.deepEqual(
        injectableFilterFindings(files).map((finding) => finding.evidence),
        [],
    );
    // And on a MOR host (MOR's asterisk.conf, sshd.conf left as Debian's): what mor-harden's jails still read of MOR's.
    const onMor = {
        ...morHost(),
        ...Object.fromEntries(
            plan.artifacts.filter((artifact) => artifact.path.startsWith("/etc/fail2ban/")).map((artifact) => [artifact.path, artifact.content]),
        ),
    };
    const inherited = injectableFilterFindings(onMor).map((finding) => finding.evidence);
    // mor-harden's filters include only common.conf, which MOR's fail2ban_patches.sh leaves alone
    // (it copies its own asterisk.conf and sshd.conf): nothing of MOR's is read by mor-harden's jails.
    assert.deepEqual(inherited, []);
});

test("jails, filters and actions merge in fail2ban's order: .local over .conf, a section's key over [DEFAULT], includes around", () => {
    const files = {
        "/etc/fail2ban/jail.conf":
            "[DEFAULT]\nusedns = warn\nfilter = %(__name__)s[mode=%(mode)s]\nmode = normal\n[a]\nenabled = false\n[b]\nenabled = true\nusedns = yes\n",
        "/etc/fail2ban/jail.d/x.conf": "[a]\nenabled = true\n",
        "/etc/fail2ban/jail.local": "[DEFAULT]\nusedns = no\n",
        "/etc/fail2ban/filter.d/common.conf": "[DEFAULT]\n_pre = ^x\\s\n",
        "/etc/fail2ban/filter.d/a.conf":
            "[INCLUDES]\nbefore = common.conf\n[Definition]\nfailregex = %(_pre)s<HOST>$\n            <mdre-<mode>>\nmdre-normal = ^n <HOST>$\nmdre-extra = .*<HOST>\n",
        "/etc/fail2ban/filter.d/a.local": "[Definition]\nfailregex = %(known/failregex)s\n            ^local <HOST>$\n",
    };
    assert.deepEqual(
        enabledJails(files).map((jail) => jail.name),
        ["a", "b"],
    );
    assert.equal(resolveDefinition(files, "/etc/fail2ban/filter.d", "a[mode=normal]").get("failregex")!.value, "^x\\s<HOST>$\n^n <HOST>$\n^local <HOST>$");
    assert.match(resolveDefinition(files, "/etc/fail2ban/filter.d", "a[mode=extra]").get("failregex")!.value, /\.\*<HOST>/);
    // b's own usedns = yes wins over jail.local's [DEFAULT]; a takes jail.local's no.
    assert.deepEqual(
        usednsFindings(files).map((finding) => `${finding.severity}: ${finding.evidence}`),
        ["medium: usedns = yes (/etc/fail2ban/jail.conf:9) for jail b"],
    );
});

test("usedns: warn (fail2ban's default) is low, yes medium, no nothing", () => {
    assert.deepEqual(
        usednsFindings({ "/etc/fail2ban/jail.conf": "[j]\nenabled = true\n" }).map((finding) => `${finding.severity}: ${finding.evidence}`),
        ["low: usedns = warn (fail2ban's default) for jail j"],
    );
    assert.deepEqual(usednsFindings({ "/etc/fail2ban/jail.conf": "[DEFAULT]\nusedns = no\n[j]\nenabled = true\n" }), []);
});

test("an action that requests a URL with the banned address beyond the host is reported for the jails that use it", () => {
    assert.equal(reportedUrl(`printf %%b "http://fail2ban.kolmisoft.com/?ip=<ip>" | xargs /usr/bin/curl`), "http://fail2ban.kolmisoft.com/?ip=<ip>");
    assert.equal(reportedUrl("curl -s http://127.0.0.1:8080/ban?ip=<ip>"), undefined, "loopback");
    assert.equal(reportedUrl("curl -s https://status.example.com/ping"), undefined, "no address sent");
    // mor-harden's notify action passes the address to a local script (the receiver is the operator's).
    const findings = reportingActionFindings(morHost()).map((finding) => finding.evidence);
    assert.deepEqual(
        findings,
        [
            "jail ast-cli-attck (/etc/fail2ban/jail.conf:19): action sendmail-banned requests http://fail2ban.kolmisoft.com/?ip=<ip> on every ban (/etc/fail2ban/action.d/sendmail-banned.conf:7)",
        ],
        "proftpd-iptables is disabled",
    );
});

test("a cron script that adds one iptables rule per listed address is reported with the cron line that runs it", () => {
    assert.deepEqual(
        cronRuleFindings(morHost()).map((finding) => finding.evidence),
        [
            `/usr/local/mor/global_grid_defense.sh:9 (run by /etc/cron.d/global_grid_defense:2): iptables -A INPUT -s "$ADDRESS_TO_BAN" -j DROP, for each line of a downloaded list`,
        ],
    );
    const notLoops = {
        "/etc/cron.d/fixed": "0 * * * * root iptables -A INPUT -s 198.51.100.1 -j DROP\n",
        "/etc/cron.daily/ipset":
            '#!/bin/sh\nwhile read -r a; do echo "add list $a"; done < /x | ipset restore\niptables -I INPUT -m set --match-set list src -j DROP\n',
    };
    assert.deepEqual(cronRuleFindings(notLoops), []);
});

test("the whole MOR host: each finding once, with its file and line", () => {
    const findings = fail2banExposureFindings(morHost());
    const byId = (id: string) => findings.filter((finding) => finding.id === id).map((finding) => finding.evidence);
    const injectable = byId("fail2ban.filter-injectable");
    assert.ok(
        injectable.some((evidence) => evidence.includes("Failed to authenticate user .*@<HOST>.*") && evidence.includes("after '@'")),
        injectable.join("\n"),
    );
    assert.ok(injectable.some((evidence) => evidence.startsWith("jail ast-cli-attck, filter asterisk_cli (/etc/fail2ban/filter.d/asterisk_cli.conf:3)")));
    // MOR's jail.conf sets no usedns: fail2ban's default, warn (sshd: Debian's jail.d/defaults-debian.conf).
    assert.deepEqual(byId("fail2ban.usedns"), ["usedns = warn (fail2ban's default) for jails asterisk-iptables, ast-cli-attck, sshd"]);
    assert.equal(byId("fail2ban.action-reports-bans").length, 1);
    assert.equal(byId("fail2ban.cron-iptables-per-address").length, 1);
    assert.ok(findings.every((finding) => finding.guide && finding.fix));
});

test("pjproject: 2.13.1 and older are reported, 2.14 not, an unknown version is info; no PJSIP, nothing", () => {
    const buildopts = (version: string) =>
        `PJPROJECT compile time config currently running against:\n PJ_VERSION                : ${version}\n PJ_M_NAME                 : x86_64\n`;
    assert.equal(pjprojectVersion(buildopts("2.13.1")), "2.13.1");
    const judge = (opts: string, modules = ["/usr/lib/asterisk/modules/res_pjsip.so"], files: Record<string, string> = {}) =>
        pjprojectFindings({ version: "Asterisk 18.18.1", buildopts: opts, pjsipModules: modules }, files).map((finding) => `${finding.id} ${finding.severity}`);
    assert.deepEqual(judge(buildopts("2.13.1")), ["asterisk.pjproject-verbatim high"]);
    assert.deepEqual(judge(buildopts("2.10")), ["asterisk.pjproject-verbatim high"]);
    assert.deepEqual(judge(buildopts("2.14")), []);
    assert.deepEqual(judge(buildopts("2.15.1")), []);
    assert.deepEqual(judge(""), ["asterisk.pjproject-unknown info"]);
    assert.deepEqual(judge(buildopts("2.13.1"), []), [], "no res_pjsip.so: chan_sip only");
    assert.deepEqual(
        judge(buildopts("2.13.1"), undefined, { "/etc/asterisk/modules.conf": "[modules]\nautoload=yes\nnoload => res_pjsip.so\n" }),
        [],
        "noload",
    );
    assert.deepEqual(pjprojectFindings(undefined, {}), []);
});

test("the host script's new section is shellcheck-clean and its payload parses back into files and Asterisk facts", () => {
    const script = ["#!/bin/sh", "b64() { base64 -w0; }", ...fail2banAndCronFiles, ...asteriskPjproject].join("\n") + "\n";
    const check = spawnSync("shellcheck", ["-s", "sh", "-e", "SC2086", "-"], { input: script, encoding: "utf8" });
    assert.equal(check.status, 0, check.stdout);
    const payload = Buffer.from("\u0001/etc/fail2ban/jail.local\n[DEFAULT]\nusedns = no\n\u0001/etc/cron.d/x\n* * * * * root /usr/local/bin/x\n").toString(
        "base64",
    );
    const asterisk = ["Asterisk 20.5.0\n", " PJ_VERSION                : 2.13.1\n", "/usr/lib/asterisk/modules/res_pjsip.so\n"].map((text) =>
        Buffer.from(text).toString("base64"),
    );
    const facts = parseAuditOutput(`N 1\nG ${payload}\nA ${asterisk.join(" ")}\n`);
    assert.deepEqual(facts.hostFiles, { "/etc/fail2ban/jail.local": "[DEFAULT]\nusedns = no\n", "/etc/cron.d/x": "* * * * * root /usr/local/bin/x\n" });
    assert.deepEqual(facts.asterisk, {
        version: "Asterisk 20.5.0",
        buildopts: " PJ_VERSION                : 2.13.1\n",
        pjsipModules: ["/usr/lib/asterisk/modules/res_pjsip.so"],
    });
});
