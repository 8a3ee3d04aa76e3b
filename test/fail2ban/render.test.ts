import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { effectiveJails, JAIL_FILE, renderFail2ban } from "../../src/fail2ban/render";
import { jailNames } from "../../src/fail2ban/schema";
import { minimalConfig, renderInputFor, SUPPORT_V4 } from "../helpers/fixtures";

describe("fail2ban renderer", () => {
    it("has the guide's seven jails with its thresholds and ban times", async () => {
        const jails = Object.fromEntries(effectiveJails(await renderInputFor(minimalConfig())).map((jail) => [jail.name, jail]));
        assert.deepEqual(Object.keys(jails), [...jailNames]);
        assert.deepEqual([jails["ssh-iptables"].maxretry, jails["ssh-iptables"].findtime, jails["ssh-iptables"].bantime], [3, 600, 600]);
        assert.deepEqual([jails["asterisk-iptables"].maxretry, jails["asterisk-iptables"].bantime], [5, 600]);
        for (const permanent of ["ast-cli-attck", "asterisk-manager", "ast-hgc-200", "mor_api"]) assert.equal(jails[permanent].bantime, -1, permanent);
        assert.deepEqual([jails["ast-hgc-200"].maxretry, jails["ast-hgc-200"].findtime], [20, 600]);
        assert.deepEqual([jails.mor_ddos.maxretry, jails.mor_ddos.bantime], [20, 3600]);
    });

    it("applies per-stack overrides and reads the OS family's logs", async () => {
        const config = minimalConfig({ os: "rhel", fail2ban: { jails: { "ssh-iptables": { maxretry: 5, bantime: "permanent" }, mor_ddos: { enabled: false } } } });
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
        assert.ok(plan.artifacts.every((artifact) => artifact.path.endsWith(".local")));
        assert.ok(plan.artifacts.every((artifact) => /^\/etc\/fail2ban\/(jail|filter)\.d\//.test(artifact.path)));
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
});
