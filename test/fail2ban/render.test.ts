import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BAN_ACTION, BAN_ACTION_FILE, banActionLine, banSets, IPSET_MAX_TIMEOUT } from "../../src/fail2ban/ban-action";
import { effectiveJails, IGNORE_PEERS_SCRIPT, JAIL_FILE, renderFail2ban } from "../../src/fail2ban/render";
import { jailNames } from "../../src/fail2ban/schema";
import { renderTemplate } from "../../src/render/templates";
import { fail2banConfigWith } from "../helpers/fail2ban-regex";
import { minimalConfig, renderInputFor, SUPPORT_V4 } from "../helpers/fixtures";
import { actionsByJail, morJailConf } from "../helpers/mor-jails";

const ourJails = [...jailNames, "recidive"];
/** Where fail2ban's server writes its pid (templates/fail2ban/server-state.sh.hbs reads it). */
const FAIL2BAN_PID_FILE = "/run/fail2ban/fail2ban.pid";

/** fail2ban's own reading of a configuration directory (what fail2ban-server would be told). */
function dumpConfig(dir: string): string {
    return execFileSync("fail2ban-client", ["-c", dir, "-d"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
}

describe("fail2ban renderer", () => {
    it("has the guide's seven jails with its thresholds and ban times, bounded where a forged source can produce the evidence", async () => {
        const jails = Object.fromEntries(effectiveJails(await renderInputFor(minimalConfig())).map((jail) => [jail.name, jail]));
        assert.deepEqual(Object.keys(jails), [...jailNames]);
        assert.deepEqual([jails["ssh-iptables"].maxretry, jails["ssh-iptables"].findtime, jails["ssh-iptables"].bantime], [3, 600, 600]);
        assert.deepEqual([jails["asterisk-iptables"].maxretry, jails["asterisk-iptables"].bantime], [5, 600]);
        // Evidence needing a round trip (a TCP login, an HTTP request): the guide's permanent ban.
        for (const permanent of ["asterisk-manager", "mor_api"]) assert.equal(jails[permanent].bantime, -1, permanent);
        // Evidence one forged UDP datagram produces: an hour (fail2ban.forgeableBantime's default).
        for (const forgeable of ["ast-cli-attck", "ast-hgc-200"]) assert.equal(jails[forgeable].bantime, 3600, forgeable);
        assert.deepEqual([jails["ast-hgc-200"].maxretry, jails["ast-hgc-200"].findtime], [20, 600]);
        assert.deepEqual([jails.mor_ddos.maxretry, jails.mor_ddos.bantime], [20, 3600]);
    });

    it("bans forgeable evidence for at most fail2ban.forgeableBantime; permanent restores the guide; a jail's own bantime wins", async () => {
        const bantimes = async (fail2ban: Record<string, unknown>) =>
            Object.fromEntries(effectiveJails(await renderInputFor(minimalConfig({ fail2ban }))).map((jail) => [jail.name, jail.bantime]));
        const day = await bantimes({ forgeableBantime: "1d" });
        assert.deepEqual([day["ast-cli-attck"], day["ast-hgc-200"], day["asterisk-iptables"], day["asterisk-manager"]], [86400, 86400, 600, -1]);
        const short = await bantimes({ forgeableBantime: "5m" });
        assert.equal(short["asterisk-iptables"], 300, "a bound below the guide's 10 minutes applies there too");
        assert.equal(short["ssh-iptables"], 600, "not to evidence that needs a round trip");
        const guide = await bantimes({ forgeableBantime: "permanent" });
        assert.deepEqual([guide["ast-cli-attck"], guide["ast-hgc-200"], guide["asterisk-iptables"]], [-1, -1, 600]);
        const own = await bantimes({ jails: { "ast-cli-attck": { bantime: "permanent" }, "ast-hgc-200": { bantime: "2h" } } });
        assert.deepEqual([own["ast-cli-attck"], own["ast-hgc-200"]], [-1, 7200]);
    });

    it("applies per-stack overrides and reads the OS family's logs", async () => {
        const config = minimalConfig({
            os: "rhel",
            fail2ban: { jails: { "ssh-iptables": { maxretry: 5, bantime: "permanent" }, mor_ddos: { enabled: false } } },
        });
        const jails = Object.fromEntries(effectiveJails(await renderInputFor(config)).map((jail) => [jail.name, jail]));
        assert.equal(jails["ssh-iptables"].maxretry, 5);
        assert.equal(jails["ssh-iptables"].bantime, -1);
        assert.deepEqual(jails["ssh-iptables"].logpath, ["/var/log/secure"]);
        assert.equal(jails.mor_ddos.enabled, false);
        assert.deepEqual(jails.mor_api.logpath, ["/var/log/httpd/access_log"]);
        assert.deepEqual(jails["ast-cli-attck"].logpath, ["/var/log/messages", "/var/log/asterisk/messages"], "the firewall's scanner log and Asterisk's");
    });

    it("never bans the trusted sources, support.kolmisoft.com included", async () => {
        const jails = effectiveJails(await renderInputFor(minimalConfig({ firewall: { trusted: ["198.51.100.10"] } })));
        for (const jail of jails) {
            assert.ok(jail.ignoreip.includes("198.51.100.10"), jail.name);
            assert.ok(jail.ignoreip.includes(SUPPORT_V4), jail.name);
        }
    });

    it("writes only .local files and bans on all ports", async () => {
        const plan = renderFail2ban(await renderInputFor(minimalConfig()));
        // fail2ban's own files; the ignore command (fail2ban.ignorePeers) is a script of mor-harden's.
        const fail2banFiles = plan.artifacts.filter((artifact) => artifact.path !== IGNORE_PEERS_SCRIPT);
        assert.ok(fail2banFiles.every((artifact) => artifact.path.endsWith(".local") || artifact.path === BAN_ACTION_FILE));
        assert.ok(fail2banFiles.every((artifact) => /^\/etc\/fail2ban\/(jail|filter|action)\.d\//.test(artifact.path)));
        const jailFile = plan.artifacts.find((artifact) => artifact.path === JAIL_FILE)!.content;
        assert.match(jailFile, /^banaction = iptables-allports$/m);
        assert.match(jailFile, /^protocol = all$/m);
        assert.match(jailFile, /^\[recidive\]$/m);
        assert.match(jailFile, /^\[sshd\]\nenabled = false$/m);
    });

    it("reads sshd in aggressive mode, sshd-session included", async () => {
        const plan = renderFail2ban(await renderInputFor(minimalConfig()));
        const filter = plan.artifacts.find((artifact) => artifact.path.endsWith("mor-harden-ssh-iptables.local"))!.content;
        assert.match(filter, /^mode = aggressive$/m);
        assert.match(filter, /^_daemon = sshd\(\?:-session\)\?$/m);
    });

    it("puts a stack's own failure pattern in the jail's filter", async () => {
        const pattern = '^<HOST> .* "GET /billing/api/\\S+" 200 .*Incorrect hash';
        const plan = renderFail2ban(await renderInputFor(minimalConfig({ fail2ban: { jails: { mor_api: { failregex: [pattern] } } } })));
        const filter = plan.artifacts.find((artifact) => artifact.path.endsWith("mor-harden-mor-api.local"))!.content;
        assert.ok(filter.includes(`failregex = ${pattern}\n`));
    });

    it("names mor-harden's ipset action in every jail: permanent jails in sets without timeout, timed ones with their ban time", async () => {
        const plan = renderFail2ban(await renderInputFor(minimalConfig({ fail2ban: { jails: { mor_ddos: { bantime: "8w" } } } })));
        const jailFile = plan.artifacts.find((artifact) => artifact.path === JAIL_FILE)!.content;
        const sections = Object.fromEntries(
            jailFile
                .split(/^\[/m)
                .slice(1)
                .map((section) => [section.slice(0, section.indexOf("]")), section]),
        );
        for (const jail of ourJails) assert.equal(sections[jail].match(/^action = /gm)?.length, 1, `${jail} has its own action line`);
        assert.match(
            sections["asterisk-manager"],
            /^action = mor-harden-ipset\.py\[settimeout=0, set=morh-ban-asterisk-manager, otherset=morh-ban-asterisk-manager-t\]$/m,
        );
        assert.match(
            sections["ast-cli-attck"],
            /^action = mor-harden-ipset\.py\[settimeout=3600, set=morh-ban-ast-cli-attck-t, otherset=morh-ban-ast-cli-attck\]$/m,
        );
        assert.match(
            sections["ssh-iptables"],
            /^action = mor-harden-ipset\.py\[settimeout=600, set=morh-ban-ssh-iptables-t, otherset=morh-ban-ssh-iptables\]$/m,
        );
        assert.match(sections.recidive, /settimeout=604800, set=morh-ban-recidive-t,/);
        // Eight weeks is beyond ipset's largest timeout: a set without one, fail2ban lifts the bans.
        assert.equal(8 * 604800 > IPSET_MAX_TIMEOUT, true);
        assert.match(sections.mor_ddos, /settimeout=0, set=morh-ban-mor_ddos,/);
        assert.deepEqual(banSets("mor_ddos", IPSET_MAX_TIMEOUT), { timeout: IPSET_MAX_TIMEOUT, set: "morh-ban-mor_ddos-t", otherSet: "morh-ban-mor_ddos" });
        for (const jail of ourJails) assert.ok(`${banSets(jail, 1).set}-6`.length <= 31, `${jail}: set names fit ipset's 31 characters`);
        assert.ok(plan.artifacts.some((artifact) => artifact.path === BAN_ACTION_FILE));
        assert.ok(plan.packages.includes("ipset"));
    });

    it("never lets a jail inherit a per-jail action from MOR's jail.conf (fail2ban-client -d)", async () => {
        const plan = renderFail2ban(await renderInputFor(minimalConfig()));
        const config = fail2banConfigWith(plan.artifacts);
        try {
            const before = actionsByJail(dumpConfig(config.dir));
            appendFileSync(join(config.dir, "jail.conf"), morJailConf);
            // Without mor-harden's jail file, MOR's actions are what these jails would run.
            writeFileSync(join(config.dir, "jail.d", "mor-harden.local"), "");
            assert.deepEqual(actionsByJail(dumpConfig(config.dir))["ssh-iptables"], ["iptables-SSH", "sendmail-whois-SSH"]);
            writeFileSync(join(config.dir, "jail.d", "mor-harden.local"), plan.artifacts.find((artifact) => artifact.path === JAIL_FILE)!.content);
            const actions = actionsByJail(dumpConfig(config.dir));
            for (const jail of ourJails) assert.deepEqual(actions[jail], [BAN_ACTION], jail);
            assert.deepEqual(actions, before, "the same with and without MOR's per-jail actions");
        } finally {
            config.cleanup();
        }
    });

    it("takes more actions of a jail as continuation lines after the ban action (ban notifications)", async () => {
        const input = await renderInputFor(minimalConfig());
        const plan = renderFail2ban(input);
        const jails = effectiveJails(input).map((jail) => ({
            ...jail,
            filter: `mor-harden-${jail.name.replace(/_/g, "-")}`,
            logpath: jail.logpath.join(" "),
            action: banActionLine(jail.name, jail.bantime),
            extraActions: ["sendmail-whois[name=%(__name__)s, dest=root]"],
        }));
        const jailFile = renderTemplate("fail2ban/jail.local.hbs", { stack: "test", jails, recidive: { enabled: false } });
        const config = fail2banConfigWith(plan.artifacts);
        try {
            writeFileSync(join(config.dir, "jail.d", "mor-harden.local"), jailFile);
            const actions = actionsByJail(dumpConfig(config.dir));
            for (const jail of jailNames) assert.deepEqual(actions[jail], [BAN_ACTION, "sendmail-whois"], jail);
        } finally {
            config.cleanup();
        }
    });

    it("validates the ban action by loading it with fail2ban's own Python: a broken one is refused", async () => {
        const plan = renderFail2ban(await renderInputFor(minimalConfig()));
        const check = plan.validate.find((command) => command.includes("mor_harden_action_check"))!;
        assert.ok(check.endsWith(` ${BAN_ACTION_FILE}`));
        const action = plan.artifacts.find((artifact) => artifact.path === BAN_ACTION_FILE)!.content;
        const dir = mkdtempSync(join(tmpdir(), "morh-action-check-"));
        try {
            const loads = (content: string) => {
                writeFileSync(join(dir, "action.py"), content);
                try {
                    execFileSync("sh", ["-c", `${check.slice(0, -BAN_ACTION_FILE.length)}'${join(dir, "action.py")}'`], { stdio: "pipe" });
                    return true;
                } catch {
                    return false;
                }
            };
            assert.equal(loads(action), true, "mor-harden's action loads");
            assert.equal(loads(action.replace("class Action(ActionBase):", "class Action(ActionBase)")), false, "a syntax error");
            assert.equal(
                loads(action.replace("from fail2ban.server.ticket import FailTicket", "from fail2ban.server.ticket import NoSuchTicket")),
                false,
                "an import fail2ban lacks",
            );
            assert.equal(loads(action.replace("class Action(ActionBase):", "class Other(ActionBase):")), false, "no Action");
            assert.equal(loads(`${action}\nprint(undefined_name)\n`), false, "a name undefined at the top");
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    describe("how fail2ban takes the files (stand-in fail2ban-client, systemctl and ipset)", () => {
        /**
         * Runs one of the plan's commands with a fail2ban-client that answers ping as told and logs
         * every other call, a systemctl that logs, an ipset that lists `sets`, a pid file in place of
         * fail2ban's naming a live process when it runs (a copy of sleep named fail2ban-server, with
         * no jail thread; `stalePid`: this test's own process, as a pid taken by another program),
         * and MORH_STATE (the snapshot's directory) holding `snapshot`; returns the calls.
         */
        function callsOf(
            command: string,
            host: { running: boolean; sets: string[]; snapshot?: Record<string, string>; env?: Record<string, string>; stalePid?: boolean },
        ): string[] {
            const dir = mkdtempSync(join(tmpdir(), "morh-f2b-reload-"));
            let server: ChildProcess | undefined;
            try {
                const tool = (name: string, body: string) => {
                    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
                    chmodSync(join(dir, name), 0o755);
                };
                tool("fail2ban-client", `[ "$1" = ping ] && exit ${host.running ? 0 : 255}; echo "fail2ban-client $*" >> '${dir}/calls'`);
                tool("systemctl", `echo "systemctl $*" >> '${dir}/calls'`);
                tool("ipset", `[ "$1 $2" = "list -n" ] && printf '%s\\n' ${host.sets.map((set) => `'${set}'`).join(" ")}`);
                const state = join(dir, "state");
                execFileSync("mkdir", ["-p", state]);
                for (const [name, content] of Object.entries(host.snapshot ?? {})) writeFileSync(join(state, name), content);
                const pidFile = join(dir, "fail2ban.pid");
                if (host.running) {
                    copyFileSync(execFileSync("sh", ["-c", "command -v sleep"], { encoding: "utf8" }).trim(), join(dir, "fail2ban-server"));
                    server = spawn(join(dir, "fail2ban-server"), ["60"], { stdio: "ignore" });
                    writeFileSync(pidFile, `${server.pid}\n`);
                    // Its name is the copy's once it has exec'd: looked for, at most 2 s.
                    const comm = `/proc/${server.pid}/comm`;
                    for (let tries = 0; tries < 200 && !(existsSync(comm) && readFileSync(comm, "utf8").trim() === "fail2ban-server"); tries++) {
                        execFileSync("sleep", ["0.01"]);
                    }
                } else if (host.stalePid) writeFileSync(pidFile, `${process.pid}\n`);
                const onThisMachine = command.split(FAIL2BAN_PID_FILE).join(pidFile);
                execFileSync("sh", ["-c", `touch '${dir}/calls'; ( ${onThisMachine} )`], {
                    env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, MORH_STATE: state, ...host.env },
                    stdio: "ignore",
                });
                return readFileSync(join(dir, "calls"), "utf8").trim().split("\n").filter(Boolean);
            } finally {
                server?.kill();
                rmSync(dir, { recursive: true, force: true });
            }
        }
        const planOf = async (config = minimalConfig()) => renderFail2ban(await renderInputFor(config));
        const activation = async (config = minimalConfig()) => (await planOf(config)).activate.find((command) => command.includes("fail2ban-client reload"))!;
        const sshSets = banSets("ssh-iptables", 600);

        it("at the switch (none of mor-harden's ban sets exists) restarts the jails in the running server", async () => {
            const activate = await activation();
            assert.ok(activate.includes(FAIL2BAN_PID_FILE), "whether the server runs is read from its pid file");
            assert.deepEqual(callsOf(activate, { running: true, sets: [] }), ["fail2ban-client reload --restart"]);
            assert.deepEqual(
                callsOf(activate, { running: true, sets: ["morh-bl-other-4", "f2b-sshd"] }),
                ["fail2ban-client reload --restart"],
                "other sets do not count",
            );
        });

        it("reloads, keeping the jails and their bans, once a ban set of mor-harden's exists, of either ban-time kind", async () => {
            const activate = await activation();
            assert.deepEqual(callsOf(activate, { running: true, sets: ["f2b-sshd", `${sshSets.set}-4`] }), ["fail2ban-client reload"]);
            assert.deepEqual(callsOf(activate, { running: true, sets: [`${sshSets.otherSet}-6`] }), ["fail2ban-client reload"], "the set of the other kind");
        });

        it("starts fail2ban when it is not running", async () => {
            assert.deepEqual(callsOf(await activation(), { running: false, sets: [] }), ["systemctl restart fail2ban"]);
            assert.deepEqual(
                callsOf(await activation(), { running: false, sets: [], stalePid: true }),
                ["systemctl restart fail2ban"],
                "its pid file names a live process that is not fail2ban's server",
            );
        });

        it("refuses a pidfile an operator moved, naming where, and takes the stock one", async () => {
            const check = (await planOf()).validate.find((command) => command.includes("pidfile"))!;
            const dir = mkdtempSync(join(tmpdir(), "morh-f2b-pidfile-"));
            try {
                execFileSync("mkdir", ["-p", join(dir, "fail2ban.d")]);
                const judged = () => {
                    try {
                        return { code: 0, out: execFileSync("sh", ["-c", check.split("/etc/fail2ban/").join(`${dir}/`)], { encoding: "utf8" }) };
                    } catch (error) {
                        return { code: (error as { status: number }).status, out: String((error as { stdout: string }).stdout) };
                    }
                };
                assert.equal(judged().code, 0, "no local settings");
                writeFileSync(join(dir, "fail2ban.local"), "[Definition]\npidfile = /var/run/fail2ban/fail2ban.pid\n");
                assert.equal(judged().code, 0, "the stock place, through /var/run");
                writeFileSync(join(dir, "fail2ban.d", "site.local"), "[Definition]\n  PidFile=/srv/f2b.pid\n");
                const moved = judged();
                assert.equal(moved.code, 1);
                assert.match(moved.out, /pidfile is moved \(.*fail2ban\.d\/site\.local:  PidFile=\/srv\/f2b\.pid\)/);
            } finally {
                rmSync(dir, { recursive: true, force: true });
            }
        });

        it("reloads when no jail bans (every one turned off)", async () => {
            const off = Object.fromEntries(jailNames.map((jail) => [jail, { enabled: false }]));
            assert.deepEqual(
                callsOf(await activation(minimalConfig({ fail2ban: { jails: off, recidive: { enabled: false } } })), { running: true, sets: [] }),
                ["fail2ban-client reload"],
            );
        });

        it("a rollback puts back the running state the snapshot found, and waits for no set of the new files", async () => {
            const plan = await planOf();
            assert.equal(plan.rollback.length, 1);
            const rollback = plan.rollback[0];
            assert.doesNotMatch(rollback, /wait_ban_sets|ban_sets_ok/);
            const found = (server: string, sets = "") => ({ "fail2ban.server": `${server}\n`, "fail2ban.sets": sets, "fail2ban.jails": "" });
            assert.deepEqual(
                callsOf(rollback, { running: true, sets: [], snapshot: found("running", `${sshSets.set}-4\n`) }),
                ["fail2ban-client reload"],
                "a later change undone",
            );
            assert.deepEqual(
                callsOf(rollback, { running: true, sets: [], snapshot: found("running") }),
                ["fail2ban-client reload --restart"],
                "the switch undone",
            );
            assert.deepEqual(callsOf(rollback, { running: false, sets: [], snapshot: found("running") }), ["systemctl restart fail2ban"], "it ran before");
            assert.deepEqual(callsOf(rollback, { running: true, sets: [], snapshot: found("stopped") }), ["fail2ban-client stop"], "it did not run before");
            assert.deepEqual(callsOf(rollback, { running: false, sets: [], snapshot: found("stopped") }), []);
            assert.deepEqual(callsOf(rollback, { running: true, sets: [] }), [], "no snapshot: the server never read the new files");
            assert.deepEqual(
                callsOf(rollback, { running: false, sets: [], snapshot: found("running"), env: { MORH_BOOT: "1" } }),
                [],
                "at boot fail2ban starts later",
            );
        });

        it("a delete restarts the jails of a running fail2ban (the restored files' own actions start), and starts no stopped one", async () => {
            const plan = await planOf();
            assert.equal(plan.deactivate.length, 1);
            assert.deepEqual(callsOf(plan.deactivate[0], { running: true, sets: [`${sshSets.set}-4`] }), ["fail2ban-client reload --restart"]);
            assert.deepEqual(callsOf(plan.deactivate[0], { running: false, sets: [] }), []);
        });

        it("never restarts the server itself (systemd would lose it): the fallback restarts the jails", async () => {
            const plan = await planOf();
            for (const command of [...plan.activate, ...plan.rollback, ...plan.deactivate]) assert.doesNotMatch(command, /^[^#]*fail2ban-client restart/m);
            assert.match(
                plan.activate.find((command) => command.includes("wait_ban_sets 30"))!,
                /fail2ban-client reload --restart/,
            );
        });
    });
});
