// One self-contained HTML page for the fleet: per host, counts by severity and the findings grouped
// by the guide's sections, with evidence and fix. Inline style, no script, nothing fetched.
import { hostLabel, xmlEscape as escape } from "../render/report";
import { guideSections, severities } from "./checks";
import type { AuditResult } from "./check";
import { severityCounts } from "./report";

const COLORS: Record<string, string> = { critical: "#8b0000", high: "#d9480f", medium: "#b08900", low: "#1c7ed6", info: "#6c757d" };

const STYLE = `body{font-family:sans-serif;margin:24px;color:#212529;background:#fff}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:2px solid #dee2e6;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px;color:#495057}
.counts span{display:inline-block;margin-right:8px;padding:3px 10px;border-radius:12px;color:#fff;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{border:1px solid #dee2e6;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f5}.sev{color:#fff;font-weight:bold;text-transform:uppercase;font-size:11px}.id{font-family:monospace;white-space:nowrap}
.error{color:#8b0000;font-weight:bold}.clean{color:#2b8a3e}`;

function hostSection(result: AuditResult): string {
    const title = `<h2>${escape(hostLabel(result))}${result.address ? ` (${escape(result.address)})` : ""}</h2>`;
    if (result.status === "error") return `${title}<p class="error">not checked: ${escape(result.reason ?? "")}</p>`;
    const counts = severityCounts(result);
    const badges = `<p class="counts">${severities.map((severity) => `<span style="background:${COLORS[severity]}">${counts[severity]} ${severity}</span>`).join("")}</p>`;
    if (result.findings.length === 0) return `${title}${badges}<p class="clean">no findings</p>`;
    const groups = guideSections
        .map((section) => {
            const findings = result.findings.filter((finding) => finding.section === section);
            if (findings.length === 0) return "";
            const rows = findings.map(
                (finding) =>
                    `<tr><td class="sev" style="background:${COLORS[finding.severity]}">${finding.severity}</td><td class="id">${escape(finding.id)}</td><td>${escape(finding.title)}</td><td>${escape(finding.evidence)}</td><td>${escape(finding.guide)}</td><td>${escape(finding.fix)}</td></tr>`,
            );
            return `<h3>${escape(section)}</h3><table><tr><th>severity</th><th>id</th><th>finding</th><th>evidence</th><th>guide line</th><th>fix</th></tr>${rows.join("")}</table>`;
        })
        .join("");
    return `${title}${badges}${groups}`;
}

export function auditHtml(results: AuditResult[], generated: Date): string {
    return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mor-harden audit</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>${STYLE}</style></head>
<body><h1>mor-harden audit: ${results.length} host${results.length === 1 ? "" : "s"}, ${escape(generated.toISOString())}</h1>
<p>Against Kolmisoft's guide <i>How to be secure using MOR</i>; line numbers refer to the guide's copy.</p>
${results.map(hostSection).join("\n")}
</body></html>
`;
}
