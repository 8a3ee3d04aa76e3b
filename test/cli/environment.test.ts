// One environment of three lab hosts through the standalone CLI, run from the workstation:
// apply in parallel with a summary, drift naming the host that drifted, a per-host override
// honoured (mor-3 without Apache), --host narrowing, and one host unreachable while the others
// are applied and checked.
import assert from "node:assert/strict";
import { needs } from "../helpers/needs";
import type { HostApplyResult } from "../../src/apply/hosts";
import type { DriftResult } from "../../src/drift/check";
import { cliFromWorkstation, labEnvironmentFile, sh, startTestLab, type TestLab } from "../helpers/lab";

const { after, before, describe, it } = needs("a lab (root, network namespaces)");

const VHOST = "/etc/apache2/sites-available/00-mor-harden.conf";

let lab: TestLab;
let stack: string;

/** The lab's environment (as `lab up` writes it) with mor-3's entry changed. */
function environmentFile(variant: string, mor3: Record<string, unknown>): string {
    return labEnvironmentFile(lab, variant, (document) => {
        const hosts = document.config["mor-harden:hosts"] as Record<string, Record<string, unknown>>;
        hosts["mor-3"] = { ...hosts["mor-3"], ...mor3 };
    });
}

const cli = (...args: string[]) => cliFromWorkstation(lab, args);

const applyJson = (file: string, ...args: string[]) => {
    const run = cli("apply", "--config", file, "--json", ...args);
    return { ...run, hosts: (JSON.parse(run.stdout) as { exitCode: number; hosts: HostApplyResult[] }).hosts };
};
const driftJson = (file: string, ...args: string[]) => {
    const run = cli("drift", "--config", file, "--json", ...args);
    return { ...run, results: JSON.parse(run.stdout) as DriftResult[] };
};

before(async () => {
    lab = await startTestLab(3);
    // mor-3 overrides the environment's Apache: off.
    stack = environmentFile("env", { apache: { enabled: false } });
});
after(() => lab?.stop());

describe("an environment of three hosts", () => {
    it("applies every host in parallel: a progress line each, every concern applied, exit 0", () => {
        const run = applyJson(stack, "--concurrency", "3");
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.deepEqual(
            run.hosts.map((host) => [host.host, host.outcome]),
            [
                ["mor-1", "done"],
                ["mor-2", "done"],
                ["mor-3", "done"],
            ],
        );
        for (const host of run.hosts)
            assert.ok(
                host.report!.concerns.every((concern) => concern.status === "applied"),
                JSON.stringify(host.report),
            );
        assert.deepEqual(
            run.hosts.map((host) => host.concerns.includes("apache")),
            [true, true, false],
        );
        assert.equal(
            run.stderr
                .trim()
                .split("\n")
                .filter((line) => /^\[\d\/3\] lab\/mor-\d \(192\.0\.2\.\d+\): done \(\d applied\)/.test(line)).length,
            3,
            run.stderr,
        );
    });

    it("honours mor-3's override: no mor-harden vhost there, the others serve theirs", () => {
        assert.notEqual(sh(lab.host(3), `test -e ${VHOST}`).code, 0, "mor-3 has no mor-harden vhost");
        for (const index of [1, 2]) assert.equal(sh(lab.host(index), `test -e ${VHOST}`).code, 0, `mor-${index}`);
    });

    it("prints a summary table of every host's concerns, and changes nothing the second time", () => {
        const run = cli("apply", "--config", stack);
        assert.equal(run.code, 0, run.stdout + run.stderr);
        const table = run.stdout.slice(run.stdout.indexOf("host  "));
        assert.match(table, /^host\s+address\s+firewall\s+sshd\s+fail2ban\s+apache$/m);
        assert.match(table, /^lab\/mor-1\s+192\.0\.2\.\d+\s+unchanged\s+unchanged\s+unchanged\s+unchanged$/m);
        assert.match(table, /^lab\/mor-3\s+192\.0\.2\.\d+\s+unchanged\s+unchanged\s+unchanged\s+-$/m);
    });

    it("finds no drift on any host, then names the one host a hand edit changed (exit 1)", () => {
        const clean = driftJson(stack);
        assert.equal(clean.code, 0, JSON.stringify(clean.results, null, 1));
        assert.deepEqual(
            clean.results.map((result) => [result.host, result.status]),
            [
                ["mor-1", "clean"],
                ["mor-2", "clean"],
                ["mor-3", "clean"],
            ],
        );
        assert.equal(sh(lab.host(2), "sed -i 's/^maxretry = 3$/maxretry = 30/' /etc/fail2ban/jail.d/mor-harden.local").code, 0);
        try {
            const run = cli("drift", "--config", stack);
            assert.equal(run.code, 1, run.stdout + run.stderr);
            assert.match(run.stdout, /^== lab\/mor-2 \(192\.0\.2\.\d+\): drift\n-- fail2ban: \/etc\/fail2ban\/jail\.d\/mor-harden\.local/m);
            assert.match(run.stdout, /^== lab\/mor-1 \(192\.0\.2\.\d+\): no drift$/m);
            assert.equal(run.stderr.trim().split("\n").length, 3, "one progress line per host");
        } finally {
            sh(lab.host(2), "sed -i 's/^maxretry = 30$/maxretry = 3/' /etc/fail2ban/jail.d/mor-harden.local");
        }
    });

    it("narrows every command to the hosts --host names, and refuses an unknown one naming the known hosts", () => {
        const narrowed = driftJson(stack, "--host", "mor-2", "--host", "mor-3");
        assert.equal(narrowed.code, 0);
        assert.deepEqual(
            narrowed.results.map((result) => result.host),
            ["mor-2", "mor-3"],
        );
        const applied = applyJson(stack, "--host", "mor-1");
        assert.deepEqual(
            applied.hosts.map((host) => host.host),
            ["mor-1"],
        );
        for (const command of ["apply", "drift", "render"]) {
            const unknown = cli(command, "--config", stack, "--host", "mor-9");
            assert.equal(unknown.code, 2, `${command}: ${unknown.stderr}`);
            assert.match(unknown.stderr, /--host mor-9: is not a host of lab \(known hosts: lab: mor-1, mor-2, mor-3\)/);
        }
    });

    it("applies and checks the other hosts while one is unreachable, reports all three, exit 2", () => {
        const unreachable = environmentFile("unreachable", {
            apache: { enabled: false },
            connection: { address: "192.0.2.250", hostKey: lab.host(3).hostKey, connectTimeout: 2 },
        });
        const applied = applyJson(unreachable);
        assert.equal(applied.code, 2, applied.stdout + applied.stderr);
        assert.deepEqual(
            applied.hosts.map((host) => [host.host, host.outcome]),
            [
                ["mor-1", "done"],
                ["mor-2", "done"],
                ["mor-3", "not-tried"],
            ],
        );
        assert.match(applied.hosts[2].reason!, /192\.0\.2\.250/);
        const checked = driftJson(unreachable);
        assert.equal(checked.code, 2);
        assert.deepEqual(
            checked.results.map((result) => [result.host, result.status]),
            [
                ["mor-1", "clean"],
                ["mor-2", "clean"],
                ["mor-3", "error"],
            ],
        );
        const text = cli("apply", "--config", unreachable);
        assert.equal(text.code, 2);
        assert.match(text.stdout, /^lab\/mor-3\s+192\.0\.2\.250\s+not tried\s+not tried\s+not tried\s+-$/m);
    });
});
