// Findings about Asterisk: chan_sip (sip.conf and its includes, and the realtime peers table),
// PJSIP, IAX2 and the Manager Interface. Pure: parsed files and database rows in, findings out.
// Secrets are only ever handed to passwordWeaknesses; evidence names devices, users and lines.
import {
    ASTERISK_DIR,
    isFalse,
    isTrue,
    lastEntry,
    moduleDisabled,
    parseAsteriskConfig,
    shortPath,
    valueOf,
    where,
    type ConfigSection,
} from "./asterisk-config";
import { finding, type AuditFinding, type CheckId } from "./checks";
import { aclWiderThan, type AclRule, type Network } from "./networks";
import { passwordWeaknesses } from "./passwords";
import { MANAGER_DIR, type DatabasePeer } from "./script";

/** What a device looks like to these checks, from a file section or a database row. */
interface Device {
    name: string;
    /** "sip.conf:12 [1001]" or "database table devices, device 1001". */
    label: string;
    secret?: string;
    /** A hashed secret (md5secret, auth=rsa) cannot be judged, and is not missing. */
    hashedSecret: boolean;
    insecure?: string;
    host?: string;
    type?: string;
    acl: AclRule[];
}

const aclOf = (entries: { key: string; value: string }[]): AclRule[] =>
    entries.filter((entry) => entry.key === "permit" || entry.key === "deny").map((entry) => ({ kind: entry.key as "permit" | "deny", value: entry.value }));

function deviceOfSection(section: ConfigSection): Device {
    return {
        name: section.name,
        label: `${shortPath(section.file)}:${section.line} [${section.name}]`,
        secret: valueOf(section, "secret"),
        hashedSecret: valueOf(section, "md5secret") !== undefined || /rsa/i.test(valueOf(section, "auth") ?? ""),
        insecure: valueOf(section, "insecure"),
        host: valueOf(section, "host"),
        type: valueOf(section, "type"),
        acl: aclOf(section.entries),
    };
}

/** A realtime row; permit and deny columns may hold several rules separated by ';' or ','. */
function deviceOfRow(row: DatabasePeer, table: string): Device {
    const rules = (kind: "permit" | "deny") =>
        (row[kind] ?? "")
            .split(/[;,]/)
            .map((value) => value.trim())
            .filter(Boolean)
            .map((value) => ({ kind, value }));
    return {
        name: row.name ?? "",
        label: `database table ${table}, device ${row.name ?? "(no name)"}`,
        secret: row.secret ?? undefined,
        hashedSecret: false,
        insecure: row.insecure ?? undefined,
        host: row.host ?? undefined,
        type: row.type ?? undefined,
        acl: [...rules("deny"), ...rules("permit")],
    };
}

const isDevice = (section: ConfigSection) => !section.template && /^(peer|friend|user)$/i.test(valueOf(section, "type") ?? "");

/** Weak secrets of any channel's devices; `insecure` and ACLs are chan_sip's (IAX2 has no insecure). */
function deviceFindings(devices: Device[], channel: "sip" | "iax"): AuditFinding[] {
    const weakId: CheckId = channel === "sip" ? "sip.weak-secret" : "iax.weak-secret";
    const findings: AuditFinding[] = [];
    for (const device of devices) {
        // insecure=very is the old spelling of port,invite.
        if (channel === "sip" && /(^|,)\s*(invite|very)\s*(,|$)/i.test(device.insecure ?? ""))
            findings.push(finding("sip.insecure-invite", `${device.label}: insecure=${device.insecure}`));
        if (!device.hashedSecret) {
            const broken = passwordWeaknesses(device.secret);
            if (broken.length > 0) findings.push(finding(weakId, `${device.label}: secret ${broken.join(", ")}`));
        }
        if (channel === "sip" && /^dynamic$/i.test(device.host ?? "") && device.acl.length === 0)
            findings.push(finding("sip.no-acl", `${device.label}: host=dynamic, no permit or deny`));
    }
    return findings;
}

function sipFindings(files: Record<string, string>, database: { table: string; read: boolean; peers: DatabasePeer[] } | undefined): AuditFinding[] {
    const path = `${ASTERISK_DIR}/sip.conf`;
    if (files[path] === undefined || moduleDisabled(files, "chan_sip")) return [];
    const sections = parseAsteriskConfig(files, path);
    const general = sections.find((section) => section.name === "general");
    const findings: AuditFinding[] = [];
    const allowguest = lastEntry(general, "allowguest");
    // chan_sip's defaults: allowguest yes, alwaysauthreject yes (since Asterisk 1.8).
    if (!isFalse(allowguest?.value))
        findings.push(
            finding(
                "sip.allowguest",
                allowguest ? `${where(allowguest)}: allowguest=${allowguest.value}` : "sip.conf [general]: allowguest not set (chan_sip's default is yes)",
            ),
        );
    const authreject = lastEntry(general, "alwaysauthreject");
    if (authreject && !isTrue(authreject.value)) findings.push(finding("sip.alwaysauthreject", `${where(authreject)}: alwaysauthreject=${authreject.value}`));
    const devices = sections.filter(isDevice).map(deviceOfSection);
    if (database?.read) devices.push(...database.peers.map((row) => deviceOfRow(row, database.table)));
    findings.push(...deviceFindings(devices, "sip"));
    if (database && !database.read)
        findings.push(
            finding(
                "sip.database-not-read",
                `extconfig.conf maps sippeers to table ${database.table}: the query through res_config_mysql.conf's credentials failed`,
            ),
        );
    return findings;
}

/** PJSIP: an endpoint named anonymous takes unauthenticated calls; auth sections' passwords. */
function pjsipFindings(files: Record<string, string>): AuditFinding[] {
    const path = `${ASTERISK_DIR}/pjsip.conf`;
    if (files[path] === undefined || moduleDisabled(files, "res_pjsip") || moduleDisabled(files, "chan_pjsip")) return [];
    const findings: AuditFinding[] = [];
    for (const section of parseAsteriskConfig(files, path).filter((candidate) => !candidate.template)) {
        const type = valueOf(section, "type");
        const label = `${shortPath(section.file)}:${section.line} [${section.name}]`;
        if (type === "endpoint" && section.name === "anonymous")
            findings.push(finding("sip.allowguest", `${label}: a PJSIP endpoint named anonymous takes calls from anyone`));
        if (type === "auth" && (valueOf(section, "auth_type") ?? "userpass") === "userpass") {
            const broken = passwordWeaknesses(valueOf(section, "password"));
            if (broken.length > 0) findings.push(finding("sip.weak-secret", `${label}: password ${broken.join(", ")}`));
        }
    }
    return findings;
}

function iaxFindings(files: Record<string, string>): AuditFinding[] {
    const path = `${ASTERISK_DIR}/iax.conf`;
    if (files[path] === undefined || moduleDisabled(files, "chan_iax2")) return [];
    const users = parseAsteriskConfig(files, path)
        .filter(isDevice)
        .filter((section) => /^(user|friend)$/i.test(valueOf(section, "type")!));
    const devices = users.map(deviceOfSection);
    // A user with no secret at all is a guest: reported as such, not as a weak secret.
    const guests = devices.filter((user) => user.secret === undefined && !user.hashedSecret);
    return [
        ...guests.map((user) => finding("iax.guest", `${user.label}: type=${user.type} with no secret takes calls from anyone`)),
        ...deviceFindings(
            devices.filter((user) => !guests.includes(user)),
            "iax",
        ),
    ];
}

/** AMI's users: manager.conf with its includes, and manager.d's files it does not include. */
function managerSections(files: Record<string, string>): ConfigSection[] {
    const main = parseAsteriskConfig(files, `${ASTERISK_DIR}/manager.conf`);
    const reached = new Set(main.map((section) => section.file));
    const extra = Object.keys(files)
        .filter((path) => path.startsWith(`${MANAGER_DIR}/`) && !reached.has(path))
        .sort()
        .flatMap((path) => parseAsteriskConfig(files, path));
    return [...main, ...extra];
}

function amiFindings(files: Record<string, string>, trusted: Network[]): AuditFinding[] {
    if (files[`${ASTERISK_DIR}/manager.conf`] === undefined) return [];
    const sections = managerSections(files);
    const general = sections.find((section) => section.name === "general");
    if (!isTrue(valueOf(general, "enabled"))) return [];
    const bind = valueOf(general, "bindaddr") ?? "0.0.0.0";
    const exposed = !/^(127\.|::1$|localhost$)/.test(bind);
    const findings: AuditFinding[] = [];
    for (const user of sections.filter((section) => section.name !== "general" && !section.template && valueOf(section, "secret") !== undefined)) {
        const label = `${shortPath(user.file)}:${user.line} [${user.name}]`;
        const wider = aclWiderThan(aclOf(user.entries), trusted);
        if (exposed && wider.length > 0) findings.push(finding("ami.exposed", `${label}: bindaddr=${bind}, permits ${wider.join(", ")}`));
        const broken = passwordWeaknesses(valueOf(user, "secret"));
        if (broken.length > 0) findings.push(finding("ami.weak-secret", `${label}: secret ${broken.join(", ")}`));
        const write = user.entries.filter((entry) => entry.key === "write").flatMap((entry) => entry.value.split(",").map((part) => part.trim().toLowerCase()));
        const dangerous = write.filter((part) => part === "all" || part === "system" || part === "command");
        if (dangerous.length > 0) findings.push(finding("ami.write-all", `${label}: write=${[...new Set(dangerous)].join(",")}`));
    }
    return findings;
}

export function asteriskFindings(
    files: Record<string, string>,
    database: { table: string; read: boolean; peers: DatabasePeer[] } | undefined,
    trusted: Network[],
): AuditFinding[] {
    return [...sipFindings(files, database), ...pjsipFindings(files), ...iaxFindings(files), ...amiFindings(files, trusted)];
}
