// `mor-harden render --scripts`: every script a host would run as root for a stack, written out
// so an operator can read it before it runs: each concern's transaction and the scripts it
// writes for later (rollback, expiry), its delete, the confirmation, rollback-now and status of a
// transaction, the boot hook and its unit, the apply's and drift's reads and the audit's script.
// Secrets stay placeholders (the transaction carries the rendered artifacts, not filled ones).
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { auditScript } from "../audit/script";
import type { OsFamily } from "../config/os";
import { driftScript } from "../drift/scripts";
import type { ConcernPlan } from "../render/artifact";
import { redactSecrets } from "../render/artifact";
import {
    applyScript,
    bootScript,
    bootUnit,
    confirmScript,
    deleteScript,
    expireScript,
    readScript,
    rollbackNowScript,
    rollbackScript,
    statusScript,
} from "./scripts";

export interface HostScript {
    /** Where it is written, relative to the output directory. */
    name: string;
    content: string;
}

/** The transaction id the written scripts stand for (an apply makes `<time>-<concern>-<random>`). */
export const sampleTxid = (concern: string) => `19700101000000000-${concern}-00000000`;

/** What the scripts run as: sh reads them on stdin (`sh -s`); the header is for reading and for shellcheck. */
function withHeader(what: string, script: string): string {
    return `#!/bin/sh\n# mor-harden: ${what}. Runs as root (sh -s over SSH); written by mor-harden render --scripts.\n${script}`;
}

export function hostScripts(plans: ConcernPlan[], options: { os: OsFamily; confirmSeconds: number; lockSeconds: number }): HostScript[] {
    const scripts: HostScript[] = [];
    const add = (name: string, what: string, script: string) => scripts.push({ name, content: withHeader(what, script) });
    add(
        "read.sh",
        "an apply's read of what is live, under the host's lock",
        readScript(plans, options.os, { fillViewCache: true, lockSeconds: options.lockSeconds }),
    );
    for (const plan of plans) {
        const txid = sampleTxid(plan.concern);
        const filled = { ...plan, contents: plan.artifacts.map((artifact) => redactSecrets(artifact.content)) };
        add(
            `${plan.concern}/transaction.sh`,
            `the ${plan.concern} transaction ${txid}`,
            applyScript(filled, {
                txid,
                os: options.os,
                // As on a host that lacks every package (an apply installs only the missing ones).
                installPackages: plan.packages,
                confirmSeconds: options.confirmSeconds,
                lockSeconds: options.lockSeconds,
            }),
        );
        add(`${plan.concern}/rollback.sh`, `the rollback the ${plan.concern} transaction writes into its directory`, rollbackScript(plan, txid) + "\n");
        if (plan.needsConfirm) add(`${plan.concern}/expire.sh`, `the end of the ${plan.concern} transaction's confirmation timer`, expireScript(txid) + "\n");
        add(
            `${plan.concern}/delete.sh`,
            `${plan.concern}'s delete (the files and running state as they were before mor-harden)`,
            deleteScript(plan, { lockSeconds: options.lockSeconds }),
        );
    }
    const txid = sampleTxid(plans.find((plan) => plan.needsConfirm)?.concern ?? plans[0]?.concern ?? "firewall");
    add("confirm.sh", `the confirmation of ${txid} over a new login`, confirmScript(txid));
    add("rollback-now.sh", `the rollback of ${txid} when a new login failed`, rollbackNowScript(txid));
    add("status.sh", `how ${txid} ended, asked over a new connection`, statusScript(txid));
    scripts.push({ name: "boot-rollback.sh", content: bootScript() });
    scripts.push({ name: "mor-harden-boot.service", content: bootUnit() });
    add("drift.sh", "drift's read (writes nothing)", driftScript(plans));
    add("audit.sh", "the audit's read (writes nothing)", auditScript());
    return scripts;
}

/** Writes the scripts under `dir` (mode 0600: they are the host's, not this machine's). */
export function writeHostScripts(dir: string, scripts: HostScript[]): void {
    for (const script of scripts) {
        const path = join(dir, script.name);
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, script.content, { mode: 0o600 });
    }
}

/**
 * `render --scripts`: the host's scripts for these plans, written under `out`/scripts/ (and
 * named on stdout), or printed whole without --out.
 */
export function renderScriptsCommand(
    plans: ConcernPlan[],
    config: { os: OsFamily; connection: { commandTimeout: number; confirmTimeout: number } },
    out: string | undefined,
): void {
    // As the engine waits for the lock (lockSecondsOf): a command's time and a confirmation's.
    const scripts = hostScripts(plans, {
        os: config.os,
        confirmSeconds: config.connection.confirmTimeout,
        lockSeconds: config.connection.commandTimeout + config.connection.confirmTimeout,
    });
    if (!out) {
        for (const script of scripts) process.stdout.write(`==== ${script.name}\n${script.content}`);
        return;
    }
    writeHostScripts(join(out, "scripts"), scripts);
    console.log(`host scripts: ${scripts.map((script) => script.name).join(", ")} written under ${join(out, "scripts")}`);
}
