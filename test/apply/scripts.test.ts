// The host scripts as text (order of their steps, no shell evaluation of host output) and as
// programs: run by sh in a private mount namespace whose /var/lib/mor-harden is a scratch tmpfs,
// so the lock, the wait for another operator's pending change, stale transactions and the boot
// hook are tried for real without a lab host.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
    applyScript,
    bootScript,
    confirmScript,
    deleteScript,
    parseReadOutput,
    readScript,
    rollbackNowScript,
    shownCommand,
    statusScript,
    STATE_DIR,
    type FilledPlan,
} from "../../src/apply/scripts";
import { file, type ConcernPlan } from "../../src/render/artifact";
import { renderHost } from "../../src/compose/host";
import { certificateFor, minimalConfig, planOf, renderInputFor } from "../helpers/fixtures";
import { requires } from "../helpers/needs";

const options = { txid: "20261128000000000-firewall-0a0b0c0d", os: "debian" as const, installPackages: [], confirmSeconds: 30, lockSeconds: 5 };

async function allPlans(): Promise<ConcernPlan[]> {
    const certificate = certificateFor("mor.example.com");
    const config = minimalConfig({
        apache: { enabled: true, serverName: "mor.example.com", certificate: certificate.certificate },
        tlsKey: { secretRef: "tlsKey" },
    });
    return renderHost(await renderInputFor(config));
}
const filled = (plan: ConcernPlan): FilledPlan => ({ ...plan, contents: plan.artifacts.map((artifact) => artifact.content) });

/** Runs a script with sh in its own mount namespace over a scratch state directory; `setup` runs first. */
function runIsolated(setup: string, script: string, timeoutMs = 30_000): { code: number; stdout: string; stderr: string } {
    const wrapper = `set -e; mkdir -p ${STATE_DIR}; mount -t tmpfs morh-test ${STATE_DIR}; mkdir -p ${STATE_DIR}/tx; ${setup}\nset +e; sh -s`;
    const result = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", wrapper], { input: script, encoding: "utf8", timeout: timeoutMs });
    return { code: result.status ?? 128, stdout: result.stdout, stderr: result.stderr };
}

/** A transaction directory as an apply leaves it: a rollback script that leaves a mark. */
function transaction(txid: string, files: Record<string, string>): string {
    return [
        `mkdir -p ${STATE_DIR}/tx/${txid}`,
        `echo 'echo rolled > ${STATE_DIR}/tx/${txid}/mark' > ${STATE_DIR}/tx/${txid}/rollback.sh`,
        ...Object.entries(files).map(([name, content]) => `printf '%s\\n' "${content}" > ${STATE_DIR}/tx/${txid}/${name}`),
    ].join("; ");
}

describe("host scripts as text", () => {
    it("parse as sh for every concern's plan, and never evaluate what the host printed", async () => {
        for (const plan of await allPlans()) {
            const scripts = [
                applyScript(filled(plan), options),
                deleteScript(plan, options),
                readScript([plan], "debian", { lockSeconds: 5 }),
                confirmScript(options.txid),
                rollbackNowScript(options.txid),
                statusScript(options.txid),
            ];
            // The scripts the transaction writes for later (rollback, expiry) are parsed too.
            const embedded = [...scripts[0].matchAll(/<<'(MORH_ROLLBACK|MORH_EXPIRE)'\n([\s\S]*?)\n\1\n/g)].map((match) => match[2]);
            assert.ok(embedded.length >= 1, `${plan.concern}: the rollback script is embedded`);
            for (const script of [...scripts, ...embedded]) {
                const syntax = spawnSync("sh", ["-n"], { input: script, encoding: "utf8" });
                assert.equal(syntax.status, 0, `${plan.concern}: ${syntax.stderr}`);
                assert.doesNotMatch(script, /\beval\b/, plan.concern);
            }
        }
    });

    it("writes everything that protects a transaction before anything moves into place, and activates last", async () => {
        for (const plan of await allPlans()) {
            const script = applyScript(filled(plan), options);
            const at = (text: string) => {
                const index = script.indexOf(text);
                assert.ok(index >= 0, `${plan.concern}: ${text}`);
                return index;
            };
            const firstMove = at(`mv -f '${plan.artifacts[0].path}.morh-new'`);
            assert.ok(at("trap '' HUP PIPE") < at("flock -w"), "SIGHUP is ignored from the start");
            for (const protective of [
                '> "$TX/rollback.sh"',
                `.morh-new' <<'MORH_CONTENT'`,
                "/manifest",
                '"$TX/backup/0"',
                `ln -f '${plan.artifacts[0].path}'`,
            ]) {
                assert.ok(at(protective) < firstMove, `${plan.concern}: ${protective} before the first move`);
            }
            assert.ok(firstMove < at('touch "$TX/activated"'));
            if (plan.needsConfirm) assert.ok(at('> "$TX/pending"') < at('touch "$TX/activated"'), `${plan.concern}: the timer is armed before activation`);
            // Steps run without the lock's descriptor: a daemon they start must not hold the host's lock.
            for (const line of script.split("\n").filter((l) => l.startsWith("( ") && l.includes('>"$TX/out"'))) assert.match(line, /9>&- \|\|/);
            // Validators run at once, each to its own output: without the lock's descriptor too.
            for (const line of script.split("\n").filter((l) => l.includes('>"$TX/out.validate.'))) assert.match(line, /9>&- & morh_job_\d+=\$!$/);
        }
    });

    it("runs a transaction's sections in their order, the confirmation timer only when the change needs a confirmation", async () => {
        for (const plan of await allPlans()) {
            const sections = [...applyScript(filled(plan), options).matchAll(/^## section: (\S+)/gm)].map((match) => match[1]);
            const timer = plan.needsConfirm ? ["confirmation"] : [];
            assert.deepEqual(
                sections,
                ["lock", "protect", "packages", "stage", "write", "prepare", "validate", "snapshot", ...timer, "activate", "verify", "commit"],
                plan.concern,
            );
        }
    });

    it("names a rollback step that failed by its code, not its comments, with nothing the shell would expand", () => {
        assert.equal(
            shownCommand('# why it is so\n  # and more\nsystemctl reload ssh\nkill -HUP "$(cat /run/sshd.pid)"'),
            "systemctl reload ssh kill -HUP ..(cat /run/sshd.pid).",
        );
        assert.equal(shownCommand("x".repeat(80)).length, 60);
    });
});

describe(
    "an apply's read as a program (no lock: it writes nothing)",
    // Any user, no root: it runs under MORH_TEST_UNIT=1 too.
    { skip: spawnSync("dpkg-query", ["--version"]).status === 0 ? false : "needs Debian's dpkg-query" },
    () => {
        /** A plan of its own: its packages, checks and views are what is under test. */
        const plan = (concern: ConcernPlan["concern"], packages: string[], verify: string[], views: [string, string][]): ConcernPlan =>
            planOf(concern, { packages, verify, liveViews: views.map(([live, text], index) => ({ name: `view ${index}`, live, expected: { text } })) });
        const read = (plans: ConcernPlan[]) => {
            const result = spawnSync("sh", ["-s"], { input: readScript(plans, "debian"), encoding: "utf8", timeout: 30_000 });
            assert.equal(result.status, 0, result.stderr);
            return parseReadOutput(result.stdout);
        };

        it("names each missing package once per concern, from one dpkg-query, a name's prefix never standing for it", () => {
            // dpkg is on every Debian machine; "dpk" is only its prefix, and the last is in no archive.
            const live = read([plan("firewall", ["dpkg", "dpk"], [], []), plan("sshd", ["morh-no-such-package", "dpkg"], [], [])]);
            assert.deepEqual(live.missingPackages, { firewall: ["dpk"], sshd: ["morh-no-such-package"] });
        });

        it("says a concern runs as configured only when its checks and every one of its views all pass", () => {
            const live = read([
                plan(
                    "firewall",
                    [],
                    ["true"],
                    [
                        ["echo a", "a"],
                        ["echo b", "b"],
                    ],
                ),
                plan(
                    "sshd",
                    [],
                    ["true"],
                    [
                        // The failing view first: a later line must not stand for it.
                        ["echo changed", "b"],
                        ["echo a", "a"],
                    ],
                ),
                plan("fail2ban", [], ["false"], [["echo a", "a"]]),
                plan("apache", [], [], []),
            ]);
            assert.deepEqual(live.running, { firewall: true, sshd: false, fail2ban: false, apache: true });
        });

        it("computes no view of a concern whose check already failed (a fresh host's read stays quick), and still reads the other concerns", () => {
            const trace = mkdtempSync(join(tmpdir(), "morh-read-"));
            try {
                const mark = (name: string) => `touch '${trace}/${name}'; echo a`;
                const live = read([plan("firewall", [], ["false"], [[mark("firewall"), "a"]]), plan("sshd", [], ["true"], [[mark("sshd"), "a"]])]);
                assert.deepEqual(live.running, { firewall: false, sshd: true });
                assert.deepEqual(readdirSync(trace), ["sshd"], "only the concern whose check passed had its view computed");
            } finally {
                rmSync(trace, { recursive: true, force: true });
            }
        });
    },
);

describe("host scripts as programs (scratch state directory)", { skip: requires("root (a private mount namespace: unshare, mount)") }, () => {
    // 3 s: the wait is counted in whole seconds, so at least 2 s of it are certain.
    const read = readScript([], "debian", { lockSeconds: 3 });

    it("waits for another operator's pending change, then names it", () => {
        const future = Math.floor(Date.now() / 1000) + 60;
        const started = Date.now();
        const result = runIsolated(
            transaction("20261128-sshd-00000001", { pending: `${future}\npid 42, user alice, from 198.51.100.7, since 2026-11-28T00:00:00Z` }),
            read,
        );
        assert.equal(result.code, 17, result.stdout + result.stderr);
        assert.match(result.stdout, /MORH-ABORTED a change is waiting for its confirmation \(20261128-sshd-00000001: pid 42, user alice, from 198\.51\.100\.7/);
        assert.ok(Date.now() - started >= 1900, "it waited before giving up");
    });

    it("rolls back, under the lock, a pending change whose timer is gone and an apply that was cut off", () => {
        const past = Math.floor(Date.now() / 1000) - 60;
        const setup = [
            transaction("20261128-firewall-00000001", { pending: String(past) }),
            transaction("20261128-apache-00000002", { open: "" }),
            transaction("20261128-sshd-00000003", { confirmed: "" }),
        ].join("; ");
        const result = runIsolated(setup, `${read}\nls ${STATE_DIR}/tx/*/mark ${STATE_DIR}/tx/*/expired`);
        assert.equal(result.code, 0, result.stdout + result.stderr);
        assert.match(result.stdout, /MORH-NOTE rolled back 20261128-firewall-00000001 \(its confirmation timer was gone\): rolled-back/);
        assert.match(result.stdout, /MORH-NOTE rolled back 20261128-apache-00000002 \(its apply was cut off\): rolled-back/);
        assert.match(result.stdout, /firewall-00000001\/mark/);
        assert.match(result.stdout, /apache-00000002\/mark/);
        assert.doesNotMatch(result.stdout, /sshd-00000003\/mark/, "a confirmed transaction is left alone");
    });

    it("times out on a lock another process holds, naming the holder", () => {
        const setup = `echo 'pid 7, user bob, from 198.51.100.8, since 2026-11-28T01:00:00Z' > ${STATE_DIR}/lock.holder; (flock ${STATE_DIR}/lock sleep 6 </dev/null >/dev/null 2>&1 &) ; sleep 0.3`;
        const result = runIsolated(setup, read);
        assert.equal(result.code, 17, result.stdout + result.stderr);
        assert.match(result.stdout, /holds the host for more than 3 s: pid 7, user bob/);
    });

    describe("a concern's validators, run at once", () => {
        const managed = `${STATE_DIR}/etc/managed.conf`;
        const log = `${STATE_DIR}/validators`;
        /** A validator that logs its start and end around a sleep, prints `output` and exits `code`. */
        const validator = (index: number, output: string, code: number) =>
            `echo "start ${index}" >> ${log}; sleep 0.3; echo "end ${index}" >> ${log}; echo '${output}'; exit ${code}`;
        const transactionWith = (validate: string[]) =>
            applyScript(
                { ...planOf("apache", { artifacts: [file(managed, "new\n")], validate }), contents: ["new\n"] },
                { ...options, txid: "20261203000000000-apache-0a0b0c0d" },
            );
        /** The transaction run from a file (it exits), then its exit status, the managed file and the validators' log. */
        const run = (validate: string[]) => {
            const script = `${STATE_DIR}/transaction.sh`;
            const result = runIsolated(
                `mkdir -p ${STATE_DIR}/etc; echo old > ${managed}`,
                `cat > ${script} <<'MORH_TEST'\n${transactionWith(validate)}MORH_TEST\nsh ${script}; echo "exit: $?"; echo "file: $(cat ${managed})"; cat ${log}`,
            );
            return { ...result, code: Number(/^exit: (\d+)$/m.exec(result.stdout)?.[1] ?? -1) };
        };

        it("start together and pass on, every one's notes printed", () => {
            const result = run([validator(0, "MORH-NOTE from the first", 0), validator(1, "MORH-NOTE from the second", 0)]);
            assert.equal(result.code, 0, result.stdout + result.stderr);
            assert.match(result.stdout, /MORH-APPLIED/);
            assert.match(result.stdout, /MORH-NOTE from the first\nMORH-NOTE from the second/);
            assert.match(result.stdout, /file: new/);
            const order = result.stdout.split("\n").filter((line) => /^(start|end) \d$/.test(line));
            assert.deepEqual(order.slice(0, 2).sort(), ["start 0", "start 1"], `both started before either ended: ${order.join(", ")}`);
        });

        it("fail as the first failing one in the plan's order says, after all have ended, and the files go back", () => {
            const result = run([validator(0, "the first passes", 0), validator(1, "the second refuses", 3), validator(2, "the third refuses too", 4)]);
            assert.equal(result.code, 13, result.stdout + result.stderr);
            assert.match(result.stdout, /the second refuses\nMORH-FAILED validate\nMORH-ROLLED-BACK/);
            assert.doesNotMatch(result.stdout, /the third refuses too|the first passes/);
            assert.match(result.stdout, /file: old/);
            assert.deepEqual(
                result.stdout
                    .split("\n")
                    .filter((line) => line.startsWith("end "))
                    .sort(),
                ["end 0", "end 1", "end 2"],
                "none was cut short",
            );
        });
    });

    it("rolls back at boot every pending or cut-off transaction, files only, and leaves confirmed ones", () => {
        const setup = [
            transaction("t-firewall-1", { pending: "1" }),
            transaction("t-sshd-2", { open: "" }),
            transaction("t-apache-3", { confirmed: "" }),
            transaction("t-fail2ban-4", { confirmed: "", open: "" }),
        ].join("; ");
        const result = runIsolated(
            setup,
            `cat > ${STATE_DIR}/boot.sh <<'BOOT'\n${bootScript()}BOOT\nsh ${STATE_DIR}/boot.sh\nfor tx in ${STATE_DIR}/tx/*; do echo "$tx $(cat $tx/result 2>/dev/null) $(cat $tx/mark 2>/dev/null)"; done`,
        );
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /t-firewall-1 rolled-back at boot rolled/);
        assert.match(result.stdout, /t-sshd-2 rolled-back at boot rolled/);
        assert.match(result.stdout, /t-apache-3\s+$/m, "a confirmed transaction is left alone");
        assert.match(result.stdout, /t-fail2ban-4 applied\s*$/m, "a confirmation cut short is committed, not rolled back");
    });
});
