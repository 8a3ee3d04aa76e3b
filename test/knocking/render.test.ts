import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createDecipheriv, createHash, createHmac } from "node:crypto";
import { execFileSync } from "node:child_process";
import { buildRuleset, INPUT_CHAIN } from "../../src/firewall/render";
import { FWKNOP_FOREIGN_RULES, knockListName, renderKnockingServer } from "../../src/knocking/render";
import { spaPacket } from "../../src/knocking/spa";
import { concernsOf, renderHost } from "../../src/compose/host";
import { parseFwknopKeys } from "../../src/config/secrets";
import { connectable, sessionFor } from "../../src/apply/target";
import { minimalConfig, renderInputFor } from "../helpers/fixtures";

const knocking = (settings: Record<string, unknown> = {}) => minimalConfig({ knocking: { mode: "sequence", sequence: [7001, 8002, 9003], ...settings } });

describe("port knocking (sequence)", () => {
    it("moves a source through one recent list per knock, the last opening the guarded services", async () => {
        const ruleset = buildRuleset(await renderInputFor(knocking()), "v4");
        const knock = ruleset.chains.find((chain) => chain.name === "MORH-KNOCK")!.rules;
        assert.equal(
            knock[0],
            `-p tcp -m tcp --dport 9003 -m recent --name ${knockListName("v4", 2)} --rcheck --seconds 10 -m recent --name ${knockListName("v4", 2)} --remove -m recent --name morh4-open --set -j DROP`,
        );
        assert.equal(knock[2], "-p tcp -m tcp --dport 7001 -m recent --name morh4-k1 --set -j DROP");
        assert.equal(knock.at(-1), "-j DROP");
        const input = ruleset.chains.find((chain) => chain.name === INPUT_CHAIN)!.rules;
        assert.ok(input.includes("-p tcp -m tcp -m multiport --dports 7001,8002,9003 -j MORH-KNOCK"));
    });

    it("gates the guarded service for trusted sources too, unless they bypass", async () => {
        const gated = buildRuleset(await renderInputFor(knocking()), "v4").chains.find((chain) => chain.name === "MORH-TRUSTED")!.rules;
        assert.deepEqual(gated, ["-p tcp -m tcp --dport 22 -m recent --name morh4-open --rcheck --seconds 30 -j MORH-SSH"]);
        const bypass = buildRuleset(await renderInputFor(knocking({ trustedBypass: true })), "v4").chains.find((chain) => chain.name === "MORH-TRUSTED")!.rules;
        assert.deepEqual(bypass, ["-p tcp -m tcp --dport 22 -j MORH-SSH"]);
    });

    it("gates a public guarded service for everyone", async () => {
        const input = buildRuleset(await renderInputFor(knocking({ guards: ["https"] })), "v6").chains.find((chain) => chain.name === INPUT_CHAIN)!.rules;
        assert.ok(input.includes("-p tcp -m tcp --dport 443 -m recent --name morh6-open --rcheck --seconds 30 -j ACCEPT"));
        assert.ok(input.includes("-p tcp -m tcp --dport 80 -j ACCEPT"), "services not guarded stay as they were");
    });
});

const spa = (settings: Record<string, unknown> = {}) =>
    minimalConfig({ knocking: { mode: "spa", guards: ["ssh", "https"], spa: { keyFile: "/etc/mor-harden/spa.keys" }, ...settings } });

describe("single packet authorization (fwknopd)", () => {
    it("leaves guarded services no accept rule of their own: fwknopd's chain lets each knocker in", async () => {
        const ruleset = buildRuleset(await renderInputFor(spa()), "v4");
        const rules = ruleset.chains.flatMap((chain) => chain.rules);
        assert.ok(!rules.some((rule) => /--dport (22|443) /.test(rule) && /-j (ACCEPT|MORH-SSH)$/.test(rule)), "no way to 22 or 443 but fwknopd's");
        assert.ok(rules.includes("-p tcp -m tcp --dport 80 -j ACCEPT"), "services not guarded stay");
        const bypass = buildRuleset(await renderInputFor(spa({ trustedBypass: true })), "v4").chains.find((chain) => chain.name === "MORH-TRUSTED")!.rules;
        assert.ok(bypass.includes("-p tcp -m tcp --dport 22 -j MORH-SSH"), "trusted sources bypass only when the stack says so");
    });

    it("renders fwknopd first, its keys only as placeholders, and confirms with a new login", async () => {
        const config = spa();
        assert.deepEqual(concernsOf(config), ["knocking", "system", "firewall", "sshd", "fail2ban"]);
        const plans = renderHost(await renderInputFor(config));
        assert.deepEqual(
            plans.map((plan) => plan.concern),
            ["knocking", "system", "firewall", "sshd", "fail2ban"],
        );
        const plan = renderKnockingServer(await renderInputFor(config))!;
        const access = plan.artifacts.find((artifact) => artifact.path === "/etc/fwknop/access.conf")!;
        assert.equal(access.mode, "0600");
        assert.ok(access.secret);
        assert.match(access.content, /^OPEN_PORTS +tcp\/22, tcp\/443$/m);
        assert.match(access.content, /^KEY_BASE64 +\S*knockKey\S*$/m);
        assert.match(plan.artifacts[0].content, /^PCAP_FILTER +udp port 62201;$/m);
        assert.ok(plan.needsConfirm);
        assert.equal(renderKnockingServer(await renderInputFor(knocking())), undefined, "no fwknopd in sequence mode");
    });

    it("sees a rule added by hand to fwknopd's chain, and not fwknopd's own", async () => {
        const plan = renderKnockingServer(await renderInputFor(spa()))!;
        assert.deepEqual(
            plan.liveViews.map((view) => view.expected),
            [{ text: "" }],
        );
        const chain = [
            "-N FWKNOP_INPUT",
            "-A FWKNOP_INPUT -s 198.51.100.10/32 -p tcp -m tcp --dport 22 -m comment --comment _exp_1795000030 -j ACCEPT",
            '-A FWKNOP_INPUT -s 198.51.100.10/32 -p tcp -m tcp --dport 443 -m comment --comment "_exp_1795000030" -j ACCEPT',
            "-A FWKNOP_INPUT -p tcp -m tcp --dport 22 -j ACCEPT",
            "-A FWKNOP_INPUT -p tcp -m comment --comment _exp_1795000030 -j ACCEPT",
        ].join("\n");
        const foreign = execFileSync("sh", ["-c", FWKNOP_FOREIGN_RULES], { input: chain + "\n", encoding: "utf8" });
        assert.equal(foreign, "-A FWKNOP_INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n-A FWKNOP_INPUT -p tcp -m comment --comment _exp_1795000030 -j ACCEPT\n");
    });

    it("builds packets fwknopd can read: salted AES-256-CBC, a SHA-256 digest, an HMAC over the whole text", () => {
        const keys = { key: Buffer.alloc(32, 7).toString("base64"), hmacKey: Buffer.alloc(64, 9).toString("base64") };
        const request = {
            keys,
            source: "198.51.100.10",
            access: ["tcp/22"],
            now: new Date(1_795_000_000_000),
            random: "1234567812345678",
            salt: Buffer.alloc(8, 1),
        };
        const packet = spaPacket(request);
        assert.equal(spaPacket(request), packet, "deterministic for the same inputs");
        assert.notEqual(spaPacket({ ...request, random: undefined, salt: undefined }), packet, "fresh by default (fwknopd refuses replays)");
        // Undo it the way fwknopd does.
        const hmacLength = 43;
        const body = "U2FsdGVkX1" + packet.slice(0, -hmacLength);
        const expectedHmac = createHmac("sha256", Buffer.from(keys.hmacKey, "base64")).update(body).digest("base64").replace(/=+$/, "");
        assert.equal(packet.slice(-hmacLength), expectedHmac);
        const raw = Buffer.from(body, "base64");
        assert.equal(raw.subarray(0, 8).toString(), "Salted__");
        const salt = raw.subarray(8, 16);
        const password = Buffer.from(keys.key, "base64");
        const d1 = createHash("md5")
            .update(Buffer.concat([password, salt]))
            .digest();
        const d2 = createHash("md5")
            .update(Buffer.concat([d1, password, salt]))
            .digest();
        const d3 = createHash("md5")
            .update(Buffer.concat([d2, password, salt]))
            .digest();
        const decipher = createDecipheriv("aes-256-cbc", Buffer.concat([d1, d2]), d3);
        const plaintext = Buffer.concat([decipher.update(raw.subarray(16)), decipher.final()]).toString();
        const fields = plaintext.split(":");
        assert.equal(fields[0], "1234567812345678");
        assert.equal(Buffer.from(fields[1], "base64").toString(), "mor-harden");
        assert.equal(fields[2], "1795000000");
        assert.equal(fields[4], "1", "an access message");
        assert.equal(Buffer.from(fields[5], "base64").toString(), "198.51.100.10,tcp/22");
        assert.equal(fields[6], createHash("sha256").update(fields.slice(0, 6).join(":")).digest("base64").replace(/=+$/, ""));
    });

    it("reads keys as `fwknop --key-gen` prints them", () => {
        assert.deepEqual(parseFwknopKeys("KEY_BASE64: a2V5\nHMAC_KEY_BASE64: aG1hYw==\n"), { key: "a2V5", hmacKey: "aG1hYw==" });
        assert.equal(parseFwknopKeys("KEY_BASE64: a2V5\n"), undefined);
    });

    it("knocks before every connection, and also the old way while the knocking settings change", () => {
        const session = sessionFor(spa(), {});
        assert.deepEqual(session.knock, { mode: "spa", port: 62201, access: ["tcp/22", "tcp/443"] });
        assert.ok(connectable(session, {}).preConnect, "a knock before each connection");
        assert.equal(connectable(sessionFor(minimalConfig(), {}), {}).preConnect, undefined, "none without knocking");
        const previous = { session: sessionFor(knocking(), {}), secrets: {} };
        assert.ok(connectable(sessionFor(minimalConfig(), {}), {}, previous).preConnect, "turning knocking off still knocks the old way");
    });
});
