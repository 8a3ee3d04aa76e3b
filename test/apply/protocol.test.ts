// The protocol between the host scripts and the engine: each parser on the lines the scripts
// print, and the engine's report for each outcome against an in-process SSH server (ssh2's
// Server, as pulumi-command tests its remote commands) that plays a host printing it: outcomes a
// lab host makes hard to produce (a lost connection mid-script, a time-out, garbage, a rollback
// that did not complete), fast and without root. The server listens on 127.0.0.1 only.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Server, utils, type Connection } from "ssh2";
import { applyHost, ApplyError, type ApplyReport, type ChangeSlot, type HostTarget } from "../../src/apply/engine";
import {
    marker,
    parseConfirmResult,
    parseDeleteResult,
    parseReadResult,
    parseRollbackNowResult,
    parseStatusResult,
    parseTransactionEnd,
    parseTransactionResult,
    stepExit,
} from "../../src/apply/protocol";
import { applyScript, confirmScript, rollbackNowScript, statusScript } from "../../src/apply/scripts";
import { file, sha256Hex, type ConcernPlan } from "../../src/render/artifact";
import { fingerprintOf } from "../../src/ssh/session";
import { planOf } from "../helpers/fixtures";

const run = (code: number, stdout: string, stderr = "") => ({ code, stdout, stderr });

describe("protocol parsers", () => {
    it("tell each end of a transaction script apart, never from a marker inside a line", () => {
        assert.deepEqual(parseTransactionResult(run(0, `${marker.locked}\n${marker.note} firewall: removed a rule\n${marker.applied}\n`)), { kind: "applied" });
        assert.deepEqual(parseTransactionResult(run(stepExit.state, `${marker.aborted} cannot write /etc/x\nsecond line\n`)), {
            kind: "aborted",
            why: "cannot write /etc/x\nsecond line",
        });
        assert.deepEqual(
            parseTransactionResult(
                run(stepExit.activate, `${marker.locked}\niptables-restore: line 3 failed\n${marker.failed} activate\n${marker.rolledBack}\n`),
            ),
            {
                kind: "rolled-back",
                step: "activate",
                output: "iptables-restore: line 3 failed",
            },
        );
        assert.equal(parseTransactionResult(run(stepExit.rollback, `${marker.failed} verify\nrollback step failed\n`)).kind, "rollback-incomplete");
        // A step's output that quotes a marker is no end: the marker must stand on its own line.
        assert.equal(parseTransactionResult(run(stepExit.activate, `echo ${marker.rolledBack}\n`)).kind, "unexpected");
        assert.equal(parseTransactionResult(run(0, `said ${marker.applied} once\n`)).kind, "unexpected");
        assert.equal(parseTransactionResult(run(2, "sh: 1: Syntax error: end of file unexpected\n")).kind, "unexpected");
    });

    it("read the result lines of confirm, rollback-now, status and delete", () => {
        assert.deepEqual(parseConfirmResult(run(0, `${marker.confirmed}\n`)), { kind: "confirmed" });
        assert.deepEqual(parseConfirmResult(run(3, `${marker.expired} rolled-back unconfirmed\n`)), {
            kind: "expired",
            ended: { kind: "rolled-back", why: "unconfirmed" },
        });
        assert.deepEqual(parseConfirmResult(run(4, `${marker.busy}\n`)), { kind: "busy" });
        assert.deepEqual(parseConfirmResult(run(4, `${marker.notReady}\n`)), { kind: "not-ready" });
        assert.deepEqual(parseConfirmResult(run(0, "garbage\n")), { kind: "unexpected", output: "garbage" });
        assert.deepEqual(parseRollbackNowResult(run(0, `${marker.alreadyConfirmed}\n`)), { kind: "already-confirmed" });
        assert.deepEqual(parseRollbackNowResult(run(0, `${marker.alreadyEnded} aborted: disk full\n`)), {
            kind: "already-ended",
            ended: { kind: "aborted", why: "disk full" },
        });
        assert.deepEqual(parseRollbackNowResult(run(0, `restoring a file failed\n${marker.rollbackIncomplete}\n`)), {
            kind: "rollback-incomplete",
            output: "restoring a file failed",
        });
        assert.deepEqual(parseStatusResult(run(0, `${marker.status} none\n`)), { kind: "none" });
        assert.deepEqual(parseStatusResult(run(0, `${marker.status} running\n`)), { kind: "running" });
        assert.deepEqual(parseStatusResult(run(0, `${marker.status} pending\n`)), { kind: "pending" });
        assert.deepEqual(parseStatusResult(run(0, `${marker.status} rollback-incomplete cut off\n`)), { kind: "rollback-incomplete", why: "cut off" });
        assert.deepEqual(parseStatusResult(run(0, "garbage\n")), { kind: "unknown", text: "unknown" });
        assert.deepEqual(parseTransactionEnd("rolled-back"), { kind: "rolled-back", why: "" });
        assert.deepEqual(parseDeleteResult(run(0, `${marker.locked}\n${marker.noOriginals}\n${marker.deleted}\n`)), {
            kind: "deleted",
            notes: [],
            noOriginals: true,
        });
        assert.deepEqual(parseDeleteResult(run(stepExit.state, `${marker.aborted} flock is missing\n`)), { kind: "aborted", why: "flock is missing" });
        assert.equal(parseDeleteResult(run(1, "boom\n")).kind, "failed");
    });

    it("read (with the lock) aborted, failed or read", () => {
        assert.deepEqual(parseReadResult(run(0, `${marker.locked}\n${marker.note} rolled back x\nV sshd 0\n`)).kind, "read");
        assert.deepEqual(parseReadResult(run(stepExit.state, `${marker.aborted} another mor-harden transaction holds the host\n`)), {
            kind: "aborted",
            why: "another mor-harden transaction holds the host",
        });
        assert.deepEqual(parseReadResult(run(2, "", "sh: syntax error\n")), { kind: "failed", output: "sh: syntax error" });
    });
});

// ---------------------------------------------------------------------------------------------
// A host played by an in-process SSH server.

/** Which script the engine sent (by what only that script contains). */
type ScriptKind = "read" | "apply" | "confirm" | "rollback-now" | "status";
/** What the played host does with a script: prints and exits, drops the connection after printing, or never ends. */
type Reply = { stdout: string; code: number } | { drop: string } | { hang: string };
type Host = (kind: ScriptKind, connection: number) => Reply;

const txid = "20261202000000000-sshd-0a0b0c0d";
const kindMarkers: [ScriptKind, string][] = [
    ["apply", "<<'MORH_ROLLBACK'"],
    ["rollback-now", marker.alreadyConfirmed],
    ["confirm", marker.notReady],
    ["status", `${marker.status} `],
];
// The markers that tell the scripts apart are really in them (else the played host would answer the wrong script).
const sample: ConcernPlan = plan(true);
assert.ok(
    applyScript({ ...sample, contents: ["x"] }, { txid, os: "debian", installPackages: [], confirmSeconds: 5, lockSeconds: 5 }).includes(kindMarkers[0][1]),
);
assert.ok(
    rollbackNowScript(txid).includes(kindMarkers[1][1]) && confirmScript(txid).includes(kindMarkers[2][1]) && statusScript(txid).includes(kindMarkers[3][1]),
);
assert.ok(!confirmScript(txid).includes(kindMarkers[1][1]) && !statusScript(txid).includes(kindMarkers[2][1]));

function kindOf(script: string): ScriptKind {
    return kindMarkers.find(([, text]) => script.includes(text))?.[0] ?? "read";
}

function plan(needsConfirm: boolean): ConcernPlan {
    return planOf("sshd", {
        artifacts: [file("/etc/ssh/sshd_config.d/00-mor-harden.conf", "PasswordAuthentication no\n")],
        validate: ["sshd -t"],
        activate: ["systemctl reload ssh"],
        needsConfirm,
    });
}

const hostKey = utils.generateKeyPairSync("ed25519");
const clientKey = utils.generateKeyPairSync("ed25519");
let server: Server;
let port = 0;
let host: Host = () => ({ stdout: "", code: 0 });
let connections = 0;
/** Connections from this one on fail to log in (a new login after activation that does not work). */
let refuseFrom = Infinity;
const sent: ScriptKind[] = [];
const open = new Set<Connection>();

function serve(client: Connection): void {
    const index = ++connections;
    open.add(client);
    client.on("close", () => open.delete(client));
    client.on("error", () => undefined);
    client.on("authentication", (context) => (context.method === "publickey" && index < refuseFrom ? context.accept() : context.reject(["publickey"])));
    client.on("session", (accept) => {
        accept().on("exec", (acceptExec) => {
            const stream = acceptExec();
            const chunks: Buffer[] = [];
            stream.on("data", (chunk: Buffer) => chunks.push(chunk));
            stream.on("end", () => {
                const kind = kindOf(Buffer.concat(chunks).toString("utf8"));
                sent.push(kind);
                const reply = host(kind, index);
                if ("drop" in reply) {
                    stream.write(reply.drop);
                    setImmediate(() => client.end());
                } else if ("hang" in reply) {
                    stream.write(reply.hang);
                } else {
                    stream.write(reply.stdout);
                    stream.exit(reply.code);
                    stream.end();
                }
            });
        });
    });
}

before(async () => {
    server = new Server({ hostKeys: [hostKey.private] }, serve);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
});

after(async () => {
    for (const client of open) client.end();
    await new Promise((resolve) => server.close(resolve));
});

function target(commandTimeoutSeconds = 10): HostTarget {
    const blob = utils.parseKey(hostKey.public);
    if (blob instanceof Error) throw blob;
    return {
        session: {
            address: "127.0.0.1",
            port,
            user: "root",
            hostKey: fingerprintOf(blob.getPublicSSH()),
            sudo: false,
            privateKey: clientKey.private,
            connectTimeoutSeconds: 5,
            commandTimeoutSeconds,
        },
        os: "debian",
        confirmSeconds: 2,
    };
}

const secret = "s3cret-private-key-line";
const readOutput = `${marker.locked}\nV sshd 1\nX openssh 9.2\n`;

/** Applies the sshd plan to the played host; the report, whether it threw or not. */
async function applyTo(
    play: Host,
    options: { needsConfirm?: boolean; commandTimeoutSeconds?: number; refuseFrom?: number; changeSlot?: ChangeSlot } = {},
): Promise<ApplyReport> {
    host = play;
    connections = 0;
    refuseFrom = options.refuseFrom ?? Infinity;
    sent.length = 0;
    try {
        return await applyHost(
            target(options.commandTimeoutSeconds),
            [plan(options.needsConfirm ?? false)],
            { tlsKey: secret },
            { changeSlot: options.changeSlot },
        );
    } catch (error) {
        if (error instanceof ApplyError) return error.report;
        throw error;
    }
}

const concern = (report: ApplyReport) => report.concerns[0];
const printing = (stdout: string, code = 0): Reply => ({ stdout, code });

describe("the engine against a played host", () => {
    it("applies when the transaction prints its applied marker, and counts the round trips", async () => {
        const report = await applyTo((kind) =>
            kind === "read" ? printing(readOutput) : printing(`${marker.locked}\n${marker.note} sshd: drop-in written\n${marker.applied}\n`),
        );
        assert.equal(concern(report).status, "applied");
        assert.deepEqual(concern(report).notes, ["sshd: drop-in written"]);
        assert.deepEqual(sent, ["read", "apply"]);
    });

    it("runs the transactions in one of the apply's change slots, entered after the read; a read that fails takes none", async () => {
        const entered: string[][] = [];
        const changeSlot: ChangeSlot = (work) => {
            entered.push([...sent]);
            return work();
        };
        const report = await applyTo((kind) => (kind === "read" ? printing(readOutput) : printing(`${marker.locked}\n${marker.applied}\n`)), { changeSlot });
        assert.equal(concern(report).status, "applied");
        assert.deepEqual(entered, [["read"]], "one slot, taken after the read and before the transaction");
        assert.deepEqual(sent, ["read", "apply"]);
        entered.length = 0;
        await assert.rejects(
            applyTo((kind) => (kind === "read" ? printing(`${marker.aborted} held\n`, stepExit.state) : printing(marker.applied)), { changeSlot }),
        );
        assert.deepEqual(entered, [], "no slot without a read");
        // The drop-in in place as desired and sshd running as configured: nothing to change, no slot.
        const dropIn = plan(false).artifacts[0];
        const inPlace = `${marker.locked}\nM ${dropIn.path} 644 root:root\nH ${sha256Hex(dropIn.content)} ${dropIn.path}\nV sshd 0\nX openssh 9.2\n`;
        const unchanged = await applyTo((kind) => (kind === "read" ? printing(inPlace) : printing(marker.applied)), { changeSlot });
        assert.equal(concern(unchanged).status, "unchanged");
        assert.deepEqual(entered, [], "no slot for a host with nothing to change");
        assert.deepEqual(sent, ["read"]);
    });

    it("reports a host locked by another operator as nothing changed, with who holds it", async () => {
        const holder = "another mor-harden transaction holds the host for more than 12 s: pid 42, user alice, from 198.51.100.7";
        const report = await applyTo((kind) => (kind === "read" ? printing(readOutput) : printing(`${marker.aborted} ${holder}\n`, stepExit.state)));
        assert.equal(concern(report).status, "failed");
        assert.equal(concern(report).message, `nothing was changed: ${holder}`);
    });

    it("fails the read with the lock holder's line when the read itself cannot have the lock", async () => {
        host = (kind) => (kind === "read" ? printing(`${marker.aborted} a change is waiting for its confirmation (x: pid 7)\n`, stepExit.state) : printing(""));
        await assert.rejects(applyHost(target(), [plan(false)], {}), /reading the host failed: a change is waiting for its confirmation \(x: pid 7\)$/);
    });

    it("reports a failed step rolled back with the tool's words, secrets redacted, the protocol's lines taken out", async () => {
        const report = await applyTo((kind) =>
            kind === "read"
                ? printing(readOutput)
                : printing(
                      `${marker.locked}\n/etc/ssh/sshd_config.d/00-mor-harden.conf: bad line ${secret}\n${marker.failed} validate\n${marker.rolledBack}\n`,
                      stepExit.validate,
                  ),
        );
        assert.equal(concern(report).status, "rolled-back");
        assert.equal(
            concern(report).message,
            `validate failed, files and running state restored and checked: /etc/ssh/sshd_config.d/00-mor-harden.conf: bad line [redacted]`,
        );
    });

    it("reports a rollback that did not complete as failed, with what the rollback said", async () => {
        const report = await applyTo((kind) =>
            kind === "read" ? printing(readOutput) : printing(`${marker.failed} activate\nrollback step failed: systemctl reload ssh\n`, stepExit.rollback),
        );
        assert.equal(concern(report).status, "failed");
        assert.equal(concern(report).message, "the change failed and its rollback is incomplete; what is live: rollback step failed: systemctl reload ssh");
    });

    it("asks the host over a new connection when the connection is lost mid-script, and reports what it says", async () => {
        const report = await applyTo((kind) => {
            if (kind === "read") return printing(readOutput);
            if (kind === "apply") return { drop: `${marker.locked}\n` };
            return printing(`${marker.status} rolled-back activate\n`);
        });
        assert.equal(concern(report).status, "rolled-back");
        assert.match(
            concern(report).message!,
            /^ssh 127\.0\.0\.1: the connection was lost while a command ran .*; the host rolled the change back \(activate\)$/,
        );
        assert.deepEqual(sent, ["read", "apply", "status"]);
        assert.equal(report.connections, 2);
    });

    it("asks the host when a command times out, and confirms a verified pending change with that new login", async () => {
        const report = await applyTo(
            (kind) => {
                if (kind === "read") return printing(readOutput);
                if (kind === "apply") return { hang: `${marker.locked}\n` };
                if (kind === "status") return printing(`${marker.status} pending\n`);
                return printing(`${marker.confirmed}\n`);
            },
            { needsConfirm: true, commandTimeoutSeconds: 1 },
        );
        assert.equal(concern(report).status, "applied");
        assert.match(concern(report).message!, /a command timed out after 1 s .*; the transaction completed on the host$/);
        assert.deepEqual(sent, ["read", "apply", "status", "confirm"]);
    });

    it("asks the host when the script prints garbage, and reports a transaction that never started", async () => {
        const report = await applyTo((kind) =>
            kind === "read" ? printing(readOutput) : kind === "apply" ? printing("garbage\n") : printing(`${marker.status} none\n`),
        );
        assert.equal(concern(report).status, "failed");
        assert.equal(
            concern(report).message,
            "the transaction script ended unexpectedly (exit 0: garbage); the transaction never started: nothing was changed",
        );
    });

    it("confirms over a new login; a change the host rolled back before the confirmation is reported rolled back", async () => {
        const confirmed = await applyTo(
            (kind) => (kind === "read" ? printing(readOutput) : kind === "apply" ? printing(`${marker.applied}\n`) : printing(`${marker.confirmed}\n`)),
            { needsConfirm: true },
        );
        assert.equal(concern(confirmed).status, "applied");
        assert.deepEqual(sent, ["read", "apply", "confirm"]);
        const expired = await applyTo(
            (kind) =>
                kind === "read"
                    ? printing(readOutput)
                    : kind === "apply"
                      ? printing(`${marker.applied}\n`)
                      : printing(`${marker.expired} rolled-back unconfirmed\n`, 3),
            { needsConfirm: true },
        );
        assert.equal(concern(expired).status, "rolled-back");
        assert.equal(concern(expired).message, "the host rolled the change back before it was confirmed (confirm timeout 2 s)");
    });

    it("rolls back over the old connection when the new login fails; a change already confirmed stays applied", async () => {
        const play = (now: string) => (kind: ScriptKind) =>
            kind === "read" ? printing(readOutput) : kind === "apply" ? printing(`${marker.applied}\n`) : printing(now);
        const rolled = await applyTo(play(`${marker.rolledBack}\n`), { needsConfirm: true, refuseFrom: 2 });
        assert.equal(concern(rolled).status, "rolled-back");
        assert.match(concern(rolled).message!, /^a new SSH login failed after activation \(.*authentication failed.*\); rolled back$/);
        assert.deepEqual(sent, ["read", "apply", "rollback-now"]);
        const done = await applyTo(play(`${marker.alreadyConfirmed}\n`), { needsConfirm: true, refuseFrom: 2 });
        assert.equal(concern(done).status, "applied");
        assert.match(concern(done).message!, /, but the change had been confirmed$/);
        const incomplete = await applyTo(play(`restoring a file failed\n${marker.rollbackIncomplete}\n`), { needsConfirm: true, refuseFrom: 2 });
        assert.equal(concern(incomplete).status, "failed");
        assert.match(concern(incomplete).message!, /; the rollback is incomplete: restoring a file failed$/);
        const ended = await applyTo(play(`${marker.alreadyEnded} rolled-back unconfirmed\n`), { needsConfirm: true, refuseFrom: 2 });
        assert.equal(concern(ended).status, "rolled-back");
        assert.match(concern(ended).message!, /; the host had rolled it back \(confirm timeout 2 s\)$/);
    });
});
