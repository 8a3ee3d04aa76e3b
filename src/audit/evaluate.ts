// From a host's raw facts to its findings, worst first. Pure.
import { asteriskFindings } from "./asterisk";
import { severityRank, type AuditFinding } from "./checks";
import { parseListeners } from "./firewall";
import type { Network } from "./networks";
import { fail2banExposureFindings } from "./fail2ban-config";
import { pjprojectFindings } from "./pjproject";
import type { AuditFacts } from "./script";
import { acmeFindings, exposureFindings, fail2banFindings, mysqlFindings, tlsFindings } from "./system";

/** `trusted`: the stack's trusted sources that are networks (AMI's permits are judged against them). */
export function evaluateFacts(facts: AuditFacts, trusted: Network[]): AuditFinding[] {
    const listeners = parseListeners(facts.sockets);
    const findings = [
        ...asteriskFindings(facts.files, facts.database, trusted),
        ...mysqlFindings(facts, listeners),
        ...tlsFindings(facts, listeners),
        ...acmeFindings(facts),
        ...exposureFindings(facts, listeners),
        ...fail2banFindings(facts),
        ...fail2banExposureFindings(facts.hostFiles),
        ...pjprojectFindings(facts.asterisk, facts.files),
    ];
    return findings.sort((a, b) => severityRank[b.severity] - severityRank[a.severity]);
}
