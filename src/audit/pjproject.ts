// Whether the host's Asterisk writes malformed SIP packets into its log verbatim. Pure.
//
// pjproject's sip_transport.c logged a packet it could not parse as
// "Error processing %ld bytes packet from %s %s:%d %.*s:\n%.*s\n-- end of packet." at level 1, the
// packet's bytes as they came, newlines included (pjsip/pjproject issue 3476, 2023-03-31); Asterisk
// passes pjproject's log to its own ("ERROR[...]: pjproject: <?>: sip_transport.c Error processing
// 72 bytes packet from UDP ...", pjproject issue 3628): so one forged UDP packet can carry whole
// lines that look like Asterisk's own, and no filter can tell them from real ones. Changed by
// pjproject pull request 3480 (merged 2023-04, first released in 2.14; 2.13.1 and older log
// verbatim); Asterisk bundles pjproject 2.14 since its pull request 577 (issue 406, merged
// 2024-02-05, cherry-picked to 18, 20 and 21).
//
// How the version is learned: Asterisk's res/res_pjproject.c captures pjproject's
// pj_dump_config() at load (capture_buildopts_cb, leading blanks skipped) and prints it under
// "PJPROJECT compile time config currently running against:" for the CLI command
// `pjproject show buildopts`; pj_dump_config's line " PJ_VERSION                : %s"
// (pjlib/src/pj/config.c) names the version. The command answers only while Asterisk runs; a
// version the audit cannot learn is reported as unknown (info), never guessed from Asterisk's own
// version. The same file maps pjproject's level 1 to Asterisk's ERROR by default
// (log_mappings asterisk_error "0,1"), which is how the packet reaches `messages`.
import { moduleDisabled } from "./asterisk-config";
import { finding, type AuditFinding } from "./checks";

/** The first pjproject release that no longer logs a malformed packet verbatim. */
export const PJPROJECT_FIXED = [2, 14] as const;

export interface AsteriskFacts {
    /** `asterisk -V` (e.g. "Asterisk 18.9.0"), empty when there is no asterisk binary. */
    version: string;
    /** `asterisk -rx 'pjproject show buildopts'` while Asterisk runs, else empty. */
    buildopts: string;
    /** Module files of PJSIP found in Asterisk's module directories. */
    pjsipModules: string[];
}

export function pjprojectVersion(buildopts: string): string | undefined {
    return /\bPJ_VERSION\s*:\s*(\d+\.\d+(?:\.\d+)*)/.exec(buildopts)?.[1];
}

const olderThanFixed = (version: string) => {
    const [major, minor] = version.split(".").map(Number);
    return major < PJPROJECT_FIXED[0] || (major === PJPROJECT_FIXED[0] && minor < PJPROJECT_FIXED[1]);
};

/** `files`: Asterisk's files (modules.conf's noload lines switch PJSIP off). */
export function pjprojectFindings(asterisk: AsteriskFacts | undefined, files: Record<string, string>): AuditFinding[] {
    if (!asterisk?.version || asterisk.pjsipModules.length === 0 || moduleDisabled(files, "res_pjsip")) return [];
    const version = pjprojectVersion(asterisk.buildopts);
    if (!version) {
        const why = asterisk.buildopts
            ? "`pjproject show buildopts` names no PJ_VERSION"
            : "Asterisk does not run or did not answer `pjproject show buildopts`";
        return [finding("asterisk.pjproject-unknown", `${asterisk.version.trim()} with ${asterisk.pjsipModules.join(", ")}: ${why}`)];
    }
    if (!olderThanFixed(version)) return [];
    return [
        finding(
            "asterisk.pjproject-verbatim",
            `${asterisk.version.trim()}: pjproject ${version} (pjproject show buildopts), older than ${PJPROJECT_FIXED.join(".")}`,
        ),
    ];
}
