// The stack config of one host: every key under the `mor-harden:` namespace of a stack file.
import { z } from "zod";
import { apacheSchema } from "../apache/schema";
import { fail2banSchema } from "../fail2ban/schema";
import { effectiveServices, firewallSchema, trustedSources } from "../firewall/schema";
import { knockingSchema } from "../knocking/schema";
import { sshdSchema } from "../sshd/schema";
import { sshdPorts } from "../sshd/ports";
import { systemSchema } from "../system/schema";
import { connectionSchema } from "./connection";
import { osFamily } from "./os";
import { opensshVersion, rangesOverlap, secretRef } from "./values";
import { ConfigError } from "./config-error";

export { ConfigError };

export const PROJECT = "mor-harden";

/** Stack keys whose values must be Pulumi secrets. */
export const secretKeys = ["privateKey", "privateKeyPassphrase", "tlsKey", "knockKey", "knockHmacKey"] as const;
export type SecretKey = (typeof secretKeys)[number];

export const hostSchema = z
    .object({
        connection: connectionSchema,
        os: osFamily,
        firewall: firewallSchema.default(firewallSchema.parse({})),
        fail2ban: fail2banSchema.default(fail2banSchema.parse({})),
        sshd: sshdSchema.default(sshdSchema.parse({})),
        apache: apacheSchema.default(apacheSchema.parse({ enabled: false })),
        knocking: knockingSchema.default(knockingSchema.parse({})),
        system: systemSchema.default(systemSchema.parse({})),
        /** Facts assumed by `render` when no host is asked (an apply reads them from the host). */
        host: z.object({ openssh: opensshVersion.optional() }).strict().default({}),
        privateKey: secretRef.optional(),
        privateKeyPassphrase: secretRef.optional(),
        tlsKey: secretRef.optional(),
        /** fwknop's keys for knocking.mode spa (KEY_BASE64 and HMAC_KEY_BASE64). */
        knockKey: secretRef.optional(),
        knockHmacKey: secretRef.optional(),
    })
    .strict()
    .superRefine((config, ctx) => {
        const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
        const services = effectiveServices(config.firewall, sshdPorts(config));
        const ssh = services.find((service) => service.name === "ssh")!;

        if (ssh.ports.from !== config.sshd.port || ssh.ports.to !== config.sshd.port) {
            issue(["firewall", "services", "ssh", "ports"], `differs from sshd.port ${config.sshd.port}: the firewall would hide sshd`);
        }
        if (ssh.exposure === "trusted" && trustedSources(config.firewall).length === 0) {
            issue(["firewall", "trusted"], "is empty and trustKolmisoftSupport is false: SSH (trusted only) would be reachable from nowhere");
        }
        if (config.sshd.allowUsers && !config.sshd.allowUsers.includes(config.connection.user)) {
            issue(["sshd", "allowUsers"], `does not include the connection user "${config.connection.user}": mor-harden would lock itself out`);
        }
        if (config.firewall.scannerLog === "nflog" && config.os !== "debian") {
            issue(["firewall", "scannerLog"], `nflog needs Debian's ulogd2 and its default log; on ${config.os} keep "kernel"`);
        }
        if (config.privateKey && config.connection.privateKeyFile) {
            issue(["connection", "privateKeyFile"], "is set as well as the secret privateKey: keep one");
        }
        if (config.apache.enabled && config.apache.acme) {
            // ACME makes the key on the host; HTTP-01 needs the CA to reach port 80 from anywhere.
            if (config.tlsKey) issue(["tlsKey"], "is set as well as apache.acme: keep one (ACME makes the key on the host)");
            const http = services.find((service) => service.name === "http");
            if (http?.exposure !== "public")
                issue(
                    ["firewall", "services", "http"],
                    `is ${http?.exposure ?? "missing"}: apache.acme validates over HTTP-01, so the CA must reach port 80 (make it public)`,
                );
            else if (http.ports.from > 80 || http.ports.to < 80)
                issue(["firewall", "services", "http", "ports"], "leaves port 80 closed: apache.acme validates over HTTP-01, on port 80 always");
            // Let's Encrypt validates from several regions of the world: a country list on http breaks issuance and renewal.
            if (config.firewall.countries?.services.http)
                issue(["firewall", "countries", "services", "http"], "narrows http to some countries while apache.acme is set: the CA validates from anywhere");
            if (config.knocking.mode !== "off" && config.knocking.guards.includes("http"))
                issue(["knocking", "guards"], "guards http while apache.acme is set: the CA could not reach port 80 to validate");
        } else if (config.apache.enabled) {
            if (config.tlsKey && config.apache.keyFile) issue(["apache", "keyFile"], "is set as well as the secret tlsKey: keep one");
            if (!config.tlsKey && !config.apache.keyFile)
                issue(["tlsKey"], "is required when apache is enabled (pulumi config set --secret tlsKey < key.pem, or apache.keyFile)");
        }

        const knocking = config.knocking;
        if (knocking.mode === "spa") {
            const secrets = Boolean(config.knockKey) && Boolean(config.knockHmacKey);
            if (!secrets && !knocking.spa.keyFile)
                issue(
                    ["knockKey"],
                    "and knockHmacKey are required for knocking.mode spa (pulumi config set --secret, or knocking.spa.keyFile): without them nobody could open the guarded services",
                );
            if (secrets && knocking.spa.keyFile) issue(["knocking", "spa", "keyFile"], "is set as well as the secrets knockKey and knockHmacKey: keep one");
            if (config.os !== "debian") issue(["knocking", "mode"], `spa needs Debian's fwknop-server; on ${config.os} use sequence`);
            // fwknopd opens a guarded port to whoever holds the key, from any country: the countries would never be asked.
            for (const guarded of knocking.guards) {
                if (config.firewall.countries?.services[guarded])
                    issue(
                        ["firewall", "countries", "services", guarded],
                        `${guarded} is guarded by spa knocking (knocking.guards), which opens it to a key's holder from anywhere: name its countries or guard it, not both`,
                    );
            }
            // fwknopd opens access for IPv4 sources: over IPv6 mor-harden itself could not get in.
            if (knocking.guards.includes("ssh") && config.connection.address.includes(":") && !knocking.trustedBypass) {
                issue(
                    ["knocking", "guards"],
                    "guards ssh in spa mode while connection.address is IPv6, which fwknopd does not open: mor-harden would lock itself out (set trustedBypass, or connect over IPv4)",
                );
            }
        }
        if (knocking.mode === "sequence") {
            knocking.sequence.forEach((knock, index) => {
                const clash = services.find(
                    (service) =>
                        service.exposure !== "closed" && service.protocol === knocking.protocol && rangesOverlap(service.ports, { from: knock, to: knock }),
                );
                if (clash) issue(["knocking", "sequence", index], `${knock}/${knocking.protocol} clashes with the ${clash.name} service port`);
            });
        }
        if (knocking.mode !== "off") {
            knocking.guards.forEach((guarded, index) => {
                if (services.find((service) => service.name === guarded)?.exposure === "closed") {
                    issue(["knocking", "guards", index], `"${guarded}" is closed in firewall.services: there is nothing to guard`);
                }
            });
        }
    });

export type HostConfig = z.infer<typeof hostSchema>;

/** A zod issue path as a config key: `firewall.trusted[2]`. */
export function keyPath(path: readonly PropertyKey[]): string {
    return path.reduce<string>((text, part) => (typeof part === "number" ? `${text}[${part}]` : text ? `${text}.${String(part)}` : String(part)), "");
}

/** One problem with the key it is about (a path into the stack config). */
export interface Issue {
    path: (string | number)[];
    message: string;
}

export function formatIssue(issue: Issue): string {
    return `${keyPath(issue.path) || "(stack config)"}: ${issue.message}`;
}

/** Each zod issue with its key path; an unknown key is its own issue, named by its full path. */
export function issuesOf(error: z.ZodError): Issue[] {
    return error.issues.flatMap((issue) => {
        const path = issue.path.filter((part): part is string | number => typeof part !== "symbol");
        return issue.code === "unrecognized_keys"
            ? issue.keys.map((key) => ({ path: [...path, key], message: "is not a known key" }))
            : [{ path, message: issue.message }];
    });
}

/** Every problem with its key path, all at once: `firewall.trusted[2]: "10.0.0.0/33" is not an address or CIDR`. */
export function describeIssues(error: z.ZodError): string[] {
    return issuesOf(error).map(formatIssue);
}

/** Validates the raw `mor-harden:*` values of a stack; throws a ConfigError naming every problem. */
export function parseHostConfig(raw: unknown, source = "stack config"): HostConfig {
    const result = hostSchema.safeParse(raw);
    if (!result.success) throw new ConfigError(source, describeIssues(result.error));
    return result.data;
}
