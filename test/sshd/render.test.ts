import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DROP_IN, effectiveExpectations, renderSshd, sshdDirectives } from "../../src/sshd/render";
import { minimalConfig, renderInputFor } from "../helpers/fixtures";

const keywords = (directives: { keyword: string }[]) => directives.map((directive) => directive.keyword);

describe("sshd renderer", () => {
    it("writes a drop-in read before cloud-init's", async () => {
        const plan = renderSshd(await renderInputFor(minimalConfig()));
        assert.equal(DROP_IN, "/etc/ssh/sshd_config.d/00-mor-harden.conf");
        assert.ok("00-mor-harden.conf" < "50-cloud-init.conf");
        assert.deepEqual(plan.artifacts.map((artifact) => artifact.path), [DROP_IN]);
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
});
