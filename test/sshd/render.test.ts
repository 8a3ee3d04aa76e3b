import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DROP_IN, effectiveExpectations, renderSshd, sshdDirectives } from "../../src/sshd/render";
import { buildRuleset } from "../../src/firewall/render";
import { HOST_KEY, minimalConfig, renderInputFor } from "../helpers/fixtures";

const keywords = (directives: { keyword: string }[]) => directives.map((directive) => directive.keyword);

describe("sshd renderer", () => {
    it("writes a drop-in read before cloud-init's", async () => {
        const plan = renderSshd(await renderInputFor(minimalConfig()));
        assert.equal(DROP_IN, "/etc/ssh/sshd_config.d/00-mor-harden.conf");
        assert.ok("00-mor-harden.conf" < "50-cloud-init.conf");
        assert.deepEqual(
            plan.artifacts.map((artifact) => artifact.path),
            [DROP_IN],
        );
        assert.ok(plan.needsConfirm);
    });

    it("is key-only with root by key only", async () => {
        const directives = sshdDirectives(await renderInputFor(minimalConfig()));
        const value = (keyword: string) => directives.find((directive) => directive.keyword === keyword)?.value;
        assert.equal(value("PasswordAuthentication"), "no");
        assert.equal(value("KbdInteractiveAuthentication"), "no");
        assert.equal(value("AuthenticationMethods"), "publickey");
        assert.equal(value("PermitRootLogin"), "prohibit-password");
        assert.equal(value("MaxAuthTries"), "6");
    });

    it("sets what Lynis flags where it locks nobody out: MaxAuthTries stays at 6 for agents with several keys", async () => {
        const directives = sshdDirectives(await renderInputFor(minimalConfig()));
        const value = (keyword: string) => directives.find((directive) => directive.keyword === keyword)?.value;
        assert.equal(value("TCPKeepAlive"), "no");
        assert.equal(value("Compression"), "no");
        assert.equal(value("MaxSessions"), "4");
        assert.equal(value("ClientAliveCountMax"), "2");
        assert.equal(value("Banner"), undefined);
        assert.equal(sshdDirectives(await renderInputFor(minimalConfig({ sshd: { maxSessions: 2 } }))).find((d) => d.keyword === "MaxSessions")?.value, "2");
        assert.throws(() => minimalConfig({ sshd: { maxAuthTries: 2 } }), /sshd\.maxAuthTries/);
    });

    it("chooses directives by the host's OpenSSH version", async () => {
        const config = minimalConfig();
        const old = keywords(sshdDirectives(await renderInputFor(config, { openssh: [8, 4] })));
        assert.ok(!old.includes("PerSourceMaxStartups"));
        const debian12 = keywords(sshdDirectives(await renderInputFor(config, { openssh: [9, 2] })));
        assert.ok(debian12.includes("PerSourceMaxStartups"));
        assert.ok(!debian12.includes("PerSourcePenalties"));
        const recent = sshdDirectives(await renderInputFor(config, { openssh: [9, 9] }));
        assert.equal(recent.find((d) => d.keyword === "PerSourcePenaltyExemptList")?.value, "198.51.100.10", "trusted sources are exempt from penalties");
        assert.ok(recent.find((d) => d.keyword === "KexAlgorithms")!.value.startsWith("mlkem768x25519-sha256,"));
        await assert.rejects(async () => sshdDirectives(await renderInputFor(config, { openssh: [7, 4] })), /OpenSSH 7\.4 cannot include sshd_config\.d/);
    });

    it("leaves algorithms to the RHEL crypto policy unless told to override", async () => {
        const respect = keywords(sshdDirectives(await renderInputFor(minimalConfig({ os: "rhel" }))));
        assert.ok(!respect.includes("Ciphers") && !respect.includes("MACs"));
        const override = keywords(sshdDirectives(await renderInputFor(minimalConfig({ os: "rhel", sshd: { rhelCryptoPolicy: "override" } }))));
        assert.ok(override.includes("Ciphers") && override.includes("KexAlgorithms"));
    });

    it("judges the effective configuration as sshd -T prints it", async () => {
        const directives = sshdDirectives(await renderInputFor(minimalConfig()));
        const expectations = effectiveExpectations(directives);
        assert.ok(expectations.includes("permitrootlogin without-password"));
        assert.ok(expectations.includes("passwordauthentication no"));
        const plan = renderSshd(await renderInputFor(minimalConfig()));
        assert.equal(plan.validate[0], "sshd -t");
        assert.ok(plan.validate[1].includes("sshd -T"));
    });

    it("listens on connection.port too while SSH moves to a new sshd.port, and the firewall opens both to the trusted", async () => {
        const moving = minimalConfig({ connection: { address: "192.0.2.11", hostKey: HOST_KEY, port: 22 }, sshd: { port: 2222 } });
        const input = await renderInputFor(moving);
        const ports = sshdDirectives(input)
            .filter((directive) => directive.keyword === "Port")
            .map((directive) => directive.value);
        assert.deepEqual(ports, ["2222", "22"]);
        const trusted = buildRuleset(input, "v4").chains.find((chain) => chain.name === "MORH-TRUSTED")!.rules;
        assert.ok(trusted.includes("-p tcp -m tcp --dport 2222 -j MORH-SSH"));
        assert.ok(trusted.includes("-p tcp -m tcp --dport 22 -j MORH-SSH"));
        // The effective check wants both lines of `sshd -T`, sorted as sort(1) prints them.
        assert.ok(renderSshd(input).validate[1].includes("[ \"$seen\" = 'port 22\nport 2222' ]"));
    });

    it("listens only on sshd.port once connection.port follows, or when connection.port is forwarded", async () => {
        for (const connection of [{ port: 2222 }, { port: 2200, forwarded: true }]) {
            const input = await renderInputFor(
                minimalConfig({ connection: { address: "192.0.2.11", hostKey: HOST_KEY, ...connection }, sshd: { port: 2222 } }),
            );
            assert.deepEqual(
                sshdDirectives(input)
                    .filter((directive) => directive.keyword === "Port")
                    .map((directive) => directive.value),
                ["2222"],
                JSON.stringify(connection),
            );
            const trusted = buildRuleset(input, "v4").chains.find((chain) => chain.name === "MORH-TRUSTED")!.rules;
            assert.deepEqual(
                trusted.filter((rule) => rule.includes("MORH-SSH")),
                ["-p tcp -m tcp --dport 2222 -j MORH-SSH"],
            );
        }
    });

    it("rolls back by a reload of a running sshd, and starts one the change killed (a reload cannot revive it)", async () => {
        const plan = renderSshd(await renderInputFor(minimalConfig()));
        assert.equal(plan.rollback.length, 1);
        assert.equal(plan.rollbackCheck.length, 1, "sshd runs after the rollback");
        /** The rollback with stand-ins for systemctl and sshd that log their calls, and a pid file of ours; returns the calls. */
        const callsOf = (host: { sshdPid?: number; systemctl?: "works" | "fails"; env?: Record<string, string> }) => {
            const dir = mkdtempSync(join(tmpdir(), "morh-sshd-rollback-"));
            try {
                const tool = (name: string, body: string) => {
                    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
                    chmodSync(join(dir, name), 0o755);
                };
                tool("systemctl", `echo "systemctl $*" >> '${dir}/calls'; exit ${host.systemctl === "fails" ? 1 : 0}`);
                tool("sshd", `echo "sshd $*" >> '${dir}/calls'`);
                if (host.sshdPid !== undefined) writeFileSync(join(dir, "sshd.pid"), `${host.sshdPid}\n`);
                const onThisMachine = plan.rollback[0].split("/run/sshd.pid").join(join(dir, "sshd.pid")).split("/usr/sbin/sshd").join(join(dir, "sshd"));
                execFileSync("sh", ["-c", `touch '${dir}/calls'; ( ${onThisMachine} )`], {
                    env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, ...host.env },
                });
                return readFileSync(join(dir, "calls"), "utf8").trim().split("\n").filter(Boolean);
            } finally {
                rmSync(dir, { recursive: true, force: true });
            }
        };
        assert.deepEqual(callsOf({ sshdPid: process.pid }), ["systemctl reload ssh"], "a running sshd");
        assert.deepEqual(callsOf({}), ["systemctl restart ssh"], "no sshd: started by its unit");
        assert.deepEqual(callsOf({ systemctl: "fails" }), ["systemctl restart ssh", "sshd"], "no systemd: sshd itself");
        assert.deepEqual(callsOf({ env: { MORH_BOOT: "1" } }), [], "at boot sshd starts later, from its unit");
    });
});
