// The dynamic provider as the Pulumi engine runs it: serialized into text, loaded in a fresh
// process, its methods called against a lab host (from the workstation).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { needs } from "../helpers/needs";
import * as pulumi from "@pulumi/pulumi";
import { sessionFor } from "../../src/apply/target";
import { loadStackConfig } from "../../src/config/stack-file";
import { secretsWithoutPulumi } from "../../src/config/secrets";
import { labExec } from "../../src/lab/lab";
import { hostProvider } from "../../src/provider/host-provider";
import type { HostInputs, HostState } from "../../src/provider/runtime";
import { renderHost } from "../../src/compose/host";
import { prepareRenderInput } from "../../src/render/prepare";
import { labStackFile, sh, startTestLab, tcpConnect, type TestLab } from "../helpers/lab";
import { families, inputChain, inputRulesIn, iptablesServicesStock, loadTables, tools, type Family } from "../helpers/rulesets";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

let lab: TestLab;
let providerFile: string;
let inputs: HostInputs;
const projectDir = join(__dirname, "..", "..", "..");

before(async () => {
    lab = await startTestLab(1);
    // A firewall of its own before the first create, so that delete has something to bring back.
    loadTables(lab.host(), iptablesServicesStock);
    const serialized = await pulumi.runtime.serializeFunction(() => hostProvider, { allowSecrets: true });
    providerFile = join(lab.state.dir, "provider.js");
    writeFileSync(providerFile, serialized.text);
    const { config, name, source } = loadStackConfig({ file: labStackFile(lab, "provider") });
    const input = await prepareRenderInput(name, config);
    inputs = {
        session: sessionFor(config, {}),
        os: config.os,
        confirmSeconds: config.connection.confirmTimeout,
        renderedForOpenssh: input.facts.openssh.join("."),
        plans: renderHost(input),
        secrets: secretsWithoutPulumi(config, source, {}),
    };
});
after(() => lab?.stop());

let calls = 0;
/** Calls a method of the serialized provider in a fresh Node process inside the workstation. */
function call<T>(method: string, ...args: unknown[]): T {
    const argsFile = join(lab.state.dir, `args-${++calls}.json`);
    writeFileSync(argsFile, JSON.stringify(args), { mode: 0o600 });
    const harness = join(projectDir, "dist", "test", "helpers", "provider-harness.js");
    const result = labExec(lab.client("workstation"), ["sh", "-c", `cd '${projectDir}' && node '${harness}' '${providerFile}' ${method} '${argsFile}'`], {
        timeoutMs: 120_000,
    });
    const reply = JSON.parse(result.stdout.trim().split("\n").at(-1) || "{}") as { ok: boolean; result: T; error?: string };
    if (!reply.ok) throw new Error(`${method}: ${reply.error ?? result.stderr}`);
    return reply.result;
}

describe("the serialized dynamic provider", () => {
    let first: { id: string; outs: HostState };

    it("captures no schema, SSH client, secret or class state", async () => {
        const serialized = await pulumi.runtime.serializeFunction(() => hostProvider, { allowSecrets: true });
        assert.equal(serialized.containsSecrets, false);
        assert.ok(serialized.text.length < 20_000, `${serialized.text.length} characters: only the provider's own methods`);
        for (const captured of ["ZodObject", "ssh2", "class Client", "handlebars", "PRIVATE KEY"])
            assert.ok(!serialized.text.includes(captured), `captures ${captured}`);
    });

    it("creates: hardens the host", () => {
        first = call("create", inputs);
        assert.match(first.id, /^SHA256:.{43}\//);
        assert.equal(first.outs.stateVersion, 1);
        assert.equal(sh(lab.host(), "sshd -T | grep -x 'passwordauthentication no'").code, 0);
    });

    it("reads the live host, and diff sees drift that read found", () => {
        const clean = call<{ props: HostState }>("read", first.id, first.outs).props;
        assert.equal(call<pulumi.dynamic.DiffResult>("diff", first.id, clean, inputs).changes, false, "no drift right after create");
        sh(lab.host(), "sed -i 's/^maxretry = 3$/maxretry = 30/' /etc/fail2ban/jail.d/mor-harden.local");
        const drifted = call<{ props: HostState }>("read", first.id, first.outs).props;
        assert.notDeepEqual(drifted.files.fail2ban, clean.files.fail2ban);
        assert.equal(call<pulumi.dynamic.DiffResult>("diff", first.id, drifted, inputs).changes, true, "up --refresh repairs it");
        const repaired = call<{ outs: HostState }>("update", first.id, drifted, inputs).outs;
        assert.equal(sh(lab.host(), "grep -c '^maxretry = 30$' /etc/fail2ban/jail.d/mor-harden.local").stdout.trim(), "0");
        assert.equal(call<pulumi.dynamic.DiffResult>("diff", first.id, call<{ props: HostState }>("read", first.id, repaired).props, inputs).changes, false);
    });

    it("reads state written before state versions existed, and refuses state from a newer version", () => {
        const { stateVersion: _version, secretFiles: _secretFiles, running: _running, ...old } = first.outs;
        const files = Object.fromEntries(
            Object.entries(first.outs.files).map(([concern, digests]) => [concern, [...digests, ...(first.outs.secretFiles[concern] ?? [])]]),
        );
        assert.equal(call<pulumi.dynamic.DiffResult>("diff", first.id, { ...old, files }, inputs).changes, false);
        assert.throws(() => call("diff", first.id, { ...first.outs, stateVersion: 99 }, inputs), /written by a newer mor-harden/);
    });

    it("puts back the originals of a concern the stack no longer manages", () => {
        const withoutApache = { ...inputs, plans: inputs.plans.filter((plan) => plan.concern !== "apache") };
        const current = call<{ props: HostState }>("read", first.id, first.outs).props;
        assert.equal(call<pulumi.dynamic.DiffResult>("diff", first.id, current, withoutApache).changes, true);
        call("update", first.id, current, withoutApache);
        assert.notEqual(sh(lab.host(), "test -e /etc/apache2/sites-available/00-mor-harden.conf").code, 0, "the vhost is gone");
        assert.notEqual(sh(lab.host(), "test -e /etc/apache2/sites-enabled/00-mor-harden.conf").code, 0, "and its site link");
        assert.equal(sh(lab.host(), "apache2ctl -t && pgrep -x apache2 >/dev/null").code, 0, "Apache still runs");
        assert.equal(sh(lab.host(), "test -f /etc/ssh/sshd_config.d/00-mor-harden.conf").code, 0, "the other concerns stay");
        first = call<{ id: string; outs: HostState }>("create", inputs);
    });

    it("never lets a replaced resource's delete undo what its replacement applied, and deletes back to the firewall found first", () => {
        const replacement = call<{ id: string; outs: HostState }>("create", inputs);
        // The attacker banned while the host is hardened, as MOR's "Blocked IPs" does it.
        const ban: Record<Family, string> = {
            v4: `-A INPUT -s ${lab.client("attacker").v4}/32 -j DROP`,
            v6: `-A INPUT -s ${lab.client("attacker").v6}/128 -j DROP`,
        };
        for (const family of families) assert.equal(sh(lab.host(), `${tools[family].cli} -w -I INPUT 1 ${ban[family].slice("-A INPUT ".length)}`).code, 0);
        call("delete", first.id, first.outs);
        assert.equal(
            sh(lab.host(), "test -f /etc/ssh/sshd_config.d/00-mor-harden.conf && iptables -C INPUT -j MORH-INPUT").code,
            0,
            "the host is still hardened",
        );
        call("delete", replacement.id, replacement.outs);
        assert.notEqual(sh(lab.host(), "test -f /etc/ssh/sshd_config.d/00-mor-harden.conf").code, 0, "delete restored the originals");
        assert.notEqual(sh(lab.host(), "iptables -C INPUT -j MORH-INPUT").code, 0);
        for (const family of families) {
            const now = inputChain(lab.host(), family);
            assert.equal(now.policy, "ACCEPT", `${family}: INPUT's policy as found`);
            // fail2ban's jumps (first in INPUT) are fail2ban's to keep or drop; the ban stays ahead of the stock rules.
            assert.deepEqual(
                now.rules.filter((rule) => !/ -j f2b-/.test(rule)),
                [ban[family], ...inputRulesIn(iptablesServicesStock[family])],
                `${family}: the stock rules are back, and the ban added meanwhile stays`,
            );
        }
        assert.equal(tcpConnect(lab.client("workstation"), lab.host().v4, 22), "open", "the stock rules let SSH in");
        assert.equal(tcpConnect(lab.client("attacker"), lab.host().v4, 22), "filtered", "except from the banned attacker");
        assert.equal(sh(lab.host(), "test -f /etc/apache2/sites-enabled/00-mor-harden.conf").code, 1, "the site link went with the vhost");
        assert.equal(sh(lab.host(), "apache2ctl -t").code, 0);
    });
});
