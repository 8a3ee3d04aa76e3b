import { z } from "zod";
import { blocklistsSchema } from "../blocklists/schema";
import { countriesSchema } from "../countries/schema";
import type { OsFamily } from "../config/os";
import { portRange, source, token } from "../config/values";
import { serviceCatalogue, serviceNames, type Exposure, type ServiceDefinition, type ServiceName } from "./services";

export const KOLMISOFT_SUPPORT = "support.kolmisoft.com";

const exposure = z.enum(["public", "trusted", "closed"], {
    error: (iss) => `${JSON.stringify(iss.input)} is not an exposure (public, trusted or closed)`,
});
const protocol = z.enum(["tcp", "udp"], { error: (iss) => `${JSON.stringify(iss.input)} is not a protocol (tcp or udp)` });

/** `ssh: trusted` or `rtp: {exposure: public, ports: "10000-20000"}`; always the object form afterwards. */
const serviceSetting = z.preprocess(
    (value) => (typeof value === "string" ? { exposure: value } : value),
    z
        .object(
            { exposure: exposure.optional(), ports: portRange.optional() },
            { error: (iss) => `${JSON.stringify(iss.input)} is not an exposure or {exposure, ports}` },
        )
        .strict(),
);

const services = z
    .object(Object.fromEntries(serviceNames.map((name) => [name, serviceSetting.optional()])) as Record<ServiceName, z.ZodOptional<typeof serviceSetting>>)
    .strict()
    .default({})
    .superRefine((settings, ctx) => {
        for (const name of serviceNames) {
            const chosen = settings[name]?.exposure;
            const definition: ServiceDefinition = serviceCatalogue[name];
            const never = definition.never ?? [];
            if (chosen && never.includes(chosen)) {
                ctx.addIssue({ code: "custom", path: [name], message: `"${chosen}" is not allowed for ${name} (${serviceCatalogue[name].description})` });
            }
        }
    });

const ruleName = token("a rule name (letters, digits, '-' and '_', at most 24)", (v) => /^[A-Za-z0-9_-]{1,24}$/.test(v));

const extraRule = z
    .object({
        name: ruleName,
        protocol,
        ports: portRange,
        exposure: z.enum(["public", "trusted"], { error: (iss) => `${JSON.stringify(iss.input)} is not public or trusted` }),
        /** Only these sources, instead of every trusted one (exposure trusted) or everyone (public). */
        sources: z.array(source).optional(),
    })
    .strict();

export const firewallSchema = z
    .object({
        /** Sources that reach the trusted services: addresses, CIDRs and host names (resolved at render time). */
        trusted: z.array(source).default([]),
        /** The guide allows SSH and the GUI from support.kolmisoft.com; only an explicit false removes it. */
        trustKolmisoftSupport: z.boolean().default(true),
        services,
        extraRules: z.array(extraRule).default([]),
        /** Render ip6tables rules too (a MOR host without IPv6 still gets a default-drop IPv6 policy). */
        ipv6: z.boolean().default(true),
        /** New SSH connections per minute from one source before they are dropped. */
        sshRateLimit: z
            .object({ perMinute: z.number().int().min(1).max(600).default(20), burst: z.number().int().min(1).max(600).default(20) })
            .strict()
            .default({ perMinute: 20, burst: 20 }),
        /** Answer ping (rate limited); the ICMP a host needs to work is always allowed. */
        allowPing: z.boolean().default(true),
        /** Published lists of addresses and CIDRs dropped before every service (see src/blocklists/). */
        blocklists: blocklistsSchema,
        /** Countries dropped before every service, and public services open to some countries only (see src/countries/). */
        countries: countriesSchema,
        /**
         * Where SIP scanner packets are logged for the ast-cli-attck jail: the kernel log, or NFLOG
         * read by ulogd (Debian's ulogd2) for hosts whose kernel log is not theirs (containers,
         * network namespaces: the kernel logs only the initial namespace's LOG rules).
         */
        scannerLog: z.enum(["kernel", "nflog"], { error: (iss) => `${JSON.stringify(iss.input)} is not kernel or nflog` }).default("kernel"),
    })
    .strict()
    .superRefine((firewall, ctx) => {
        const seen = new Set<string>();
        firewall.extraRules.forEach((rule, index) => {
            if (seen.has(rule.name)) ctx.addIssue({ code: "custom", path: ["extraRules", index, "name"], message: `"${rule.name}" is used by another rule` });
            seen.add(rule.name);
        });
        // Only a public service can be narrowed to countries: a trusted one is open to trusted sources only, a closed one to nobody.
        for (const name of Object.keys(firewall.countries?.services ?? {}) as ServiceName[]) {
            if (!serviceNames.includes(name)) continue; // named by the countries' schema
            const chosen = firewall.services[name]?.exposure ?? serviceCatalogue[name].exposure;
            if (chosen !== "public") {
                ctx.addIssue({
                    code: "custom",
                    path: ["countries", "services", name],
                    message: `${name} is ${chosen}, not public: only a public service can be opened to some countries`,
                });
            }
        }
    });

export type FirewallConfig = z.infer<typeof firewallSchema>;

export interface EffectiveService {
    name: string;
    protocol: "tcp" | "udp";
    ports: { from: number; to: number };
    exposure: Exposure;
    sources?: string[];
}

/**
 * The catalogue with the stack's choices applied: every service with its ports and exposure. `sshPorts` are sshd's (see sshdPorts): the first is
 * the ssh service's default port; each further one (SSH moving to a new port) is one more "ssh"
 * entry with the same exposure.
 */
export function effectiveServices(firewall: FirewallConfig, sshPorts: number[]): EffectiveService[] {
    const catalogue: EffectiveService[] = serviceNames.flatMap((name) => {
        const definition = serviceCatalogue[name];
        const chosen = firewall.services[name] ?? {};
        const defaultPorts = name === "ssh" ? { from: sshPorts[0], to: sshPorts[0] } : definition.ports;
        const service = { name, protocol: definition.protocol, ports: chosen.ports ?? defaultPorts, exposure: chosen.exposure ?? definition.exposure };
        return name === "ssh" ? [service, ...sshPorts.slice(1).map((port) => ({ ...service, ports: { from: port, to: port } }))] : [service];
    });
    const extra: EffectiveService[] = firewall.extraRules.map((rule) => ({
        name: rule.name,
        protocol: rule.protocol,
        ports: rule.ports,
        exposure: rule.exposure,
        sources: rule.sources,
    }));
    return [...catalogue, ...extra];
}

/** Every trusted source the stack names, with Kolmisoft's support host unless removed explicitly. */
export function trustedSources(firewall: FirewallConfig): string[] {
    const sources = firewall.trustKolmisoftSupport ? [KOLMISOFT_SUPPORT, ...firewall.trusted] : firewall.trusted;
    return [...new Set(sources)];
}

/** The file in which the firewall's scanner log lines land (ast-cli-attck reads it). */
export function scannerLogFile(scannerLog: FirewallConfig["scannerLog"], os: OsFamily): string {
    // Debian's ulogd2 writes NFLOG group 0 there in syslog's format (its default stack).
    if (scannerLog === "nflog") return "/var/log/ulog/syslogemu.log";
    return os === "debian" ? "/var/log/kern.log" : "/var/log/messages";
}
