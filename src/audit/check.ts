// Audits hosts: one SSH connection and one read-only round trip each, then pure evaluation. Only
// the stack's connection block is needed: hosts mor-harden does not manage yet are audited too.
import { hostSecrets, reasonOf, withSession } from "../apply/run-hosts";
import { hostIdentity, secondsSince } from "../render/report";
import type { HostOfEnvironment } from "../config/environment";
import type { SecretValues } from "../config/secrets";
import type { AuditFinding } from "./checks";
import { evaluateFacts } from "./evaluate";
import { parseNetwork, type Network } from "./networks";
import { auditScript, parseAuditOutput } from "./script";

export interface AuditResult {
    stack: string;
    /** The host's name; absent in the single-host form and for a stack that could not be read. */
    host?: string;
    address?: string;
    /** checked: findings are complete; error: the host could not be checked (reason). */
    status: "checked" | "error";
    findings: AuditFinding[];
    reason?: string;
    roundTrips: number;
    seconds: number;
}

/** A stack that could not be read: one result standing for all its hosts. */
export function unreadableStackAudit(target: { stack?: string; file?: string }, error: unknown): AuditResult {
    return { stack: target.stack ?? target.file ?? "?", status: "error", reason: reasonOf(error), findings: [], roundTrips: 0, seconds: 0 };
}

export async function auditHost(target: HostOfEnvironment): Promise<AuditResult> {
    const started = process.hrtime.bigint();
    const { config } = target.host;
    const result: AuditResult = { ...hostIdentity(target), address: config.connection.address, status: "error", findings: [], roundTrips: 0, seconds: 0 };
    let secrets: SecretValues = {};
    try {
        secrets = hostSecrets(target.host);
        const output = await withSession(
            target,
            secrets,
            (session) => session.run(auditScript()),
            (session) => (result.roundTrips = session.roundTrips),
        );
        if (output.code !== 0) throw new Error(`the audit script failed on the host (exit ${output.code})`);
        const trusted = config.firewall.trusted.map(parseNetwork).filter((network): network is Network => network !== undefined);
        result.findings = evaluateFacts(parseAuditOutput(output.stdout), trusted);
        result.status = "checked";
    } catch (error) {
        result.reason = reasonOf(error, secrets);
    }
    result.seconds = secondsSince(started);
    return result;
}
