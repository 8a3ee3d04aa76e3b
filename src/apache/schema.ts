import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { z } from "zod";
import { absolutePath, hostname, token } from "../config/values";

/** The blocks of a PEM chain, leaf first; anything else than whitespace between them is an error. */
export function splitPemChain(text: string): string[] | undefined {
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
    if (!blocks) return undefined;
    const rest = blocks.reduce((remaining, block) => remaining.replace(block, ""), text);
    return rest.trim() === "" ? blocks : undefined;
}

/**
 * A certificate chain in PEM. Each certificate is parsed and written back by node's X509
 * parser, so nothing but base64 certificate text reaches the host.
 */
export const certificateChain = z.string().transform((text, ctx) => {
    const blocks = splitPemChain(text);
    if (!blocks) {
        ctx.addIssue({ code: "custom", message: "is not a PEM certificate chain (only -----BEGIN CERTIFICATE----- blocks)" });
        return z.NEVER;
    }
    const parsed: X509Certificate[] = [];
    for (const [index, block] of blocks.entries()) {
        try {
            parsed.push(new X509Certificate(block));
        } catch (error) {
            ctx.addIssue({ code: "custom", message: `certificate ${index + 1} of the chain does not parse: ${(error as Error).message}` });
            return z.NEVER;
        }
    }
    return parsed.map((certificate) => certificate.toString().trim()).join("\n") + "\n";
});

const serverName = token("a server name", (v) => hostname.safeParse(v).success || v === "localhost");

/** Let's Encrypt's production directory (RFC 8555 directory URL). */
export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";

/** An https URL of an ACME directory: only the characters a URL needs (it reaches certbot's command line). */
const directoryUrl = token("an https URL of an ACME directory", (v) => {
    if (!/^https:\/\/[A-Za-z0-9.:[\]_~%/-]+$/.test(v)) return false;
    try {
        return new URL(v).protocol === "https:";
    } catch {
        return false;
    }
});

/** An operator's e-mail address for the CA's expiry notices (certbot -m). */
const email = token("an e-mail address", (v) => /^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(v) && v.length <= 254);

/**
 * ACME issuance and renewal on the host (certbot, HTTP-01 through the firewall's port 80): the
 * key is made on the host and never leaves it. Exclusive with certificate(File), keyFile and the
 * tlsKey secret.
 */
export const acmeSchema = z
    .object({
        email,
        directory: directoryUrl.default(LETS_ENCRYPT_DIRECTORY),
        /** The names the certificate covers; default: serverName and serverAliases. */
        domains: z.array(hostname).min(1, { error: "names no domain (leave it out for serverName and its aliases)" }).optional(),
        /** The CA certificates that sign a private ACME directory's TLS certificate, in PEM (certbot trusts them through REQUESTS_CA_BUNDLE). */
        caBundle: certificateChain.optional(),
    })
    .strict();
export type AcmeConfig = z.infer<typeof acmeSchema>;

export const apacheSchema = z
    .object({
        enabled: z.boolean().default(true),
        serverName: serverName.optional(),
        serverAliases: z.array(serverName).default([]),
        /** The leaf certificate followed by its intermediates, in PEM. */
        certificate: certificateChain.optional(),
        /** A PEM file on the operator's machine read instead of `certificate`. */
        certificateFile: absolutePath.optional(),
        /** The private key as a file on the operator's machine, when not set as the secret `tlsKey`. */
        keyFile: absolutePath.optional(),
        /** Issue and renew the certificate on the host with ACME instead of bringing one. */
        acme: acmeSchema.optional(),
        documentRoot: absolutePath.default("/var/www/html"),
        hsts: z
            .object({
                maxAge: z.number().int().min(0).max(126144000).default(63072000),
                includeSubDomains: z.boolean().default(false),
                preload: z.boolean().default(false),
            })
            .strict()
            .default({ maxAge: 63072000, includeSubDomains: false, preload: false }),
        /** Answer plain HTTP with a permanent redirect to HTTPS. */
        redirectHttp: z.boolean().default(true),
    })
    .strict()
    .superRefine((apache, ctx) => {
        if (!apache.enabled) return;
        if (!apache.serverName) ctx.addIssue({ code: "custom", path: ["serverName"], message: "is required when apache is enabled" });
        if (apache.acme) {
            for (const key of ["certificate", "certificateFile", "keyFile"] as const)
                if (apache[key] !== undefined)
                    ctx.addIssue({ code: "custom", path: ["acme"], message: `is set as well as apache.${key}: keep one (ACME makes the key on the host)` });
            if (apache.serverName && !hostname.safeParse(apache.serverName).success && !apache.acme.domains)
                ctx.addIssue({
                    code: "custom",
                    path: ["acme", "domains"],
                    message: `is required: serverName "${apache.serverName}" is no public DNS name an ACME CA can validate`,
                });
            const names = acmeDomains(apache);
            // The SSL vhost answers serverName with this certificate: it must name it.
            if (apache.acme.domains && apache.serverName && !names.includes(apache.serverName.toLowerCase()))
                ctx.addIssue({
                    code: "custom",
                    path: ["acme", "domains"],
                    message: `does not name serverName "${apache.serverName}", which the certificate serves`,
                });
            names.forEach((name, index) => {
                // A CA validates only public names: one label (localhost, a host's short name) never is.
                if (!name.includes(".") || name.endsWith(".localhost"))
                    ctx.addIssue({
                        code: "custom",
                        path: apache.acme!.domains ? ["acme", "domains", index] : ["serverAliases"],
                        message: `"${name}" is no public DNS name an ACME CA can validate`,
                    });
            });
            return;
        }
        if (!apache.certificate)
            ctx.addIssue({ code: "custom", path: ["certificate"], message: "is required when apache is enabled (or certificateFile, or acme)" });
        if (apache.certificate && apache.serverName) {
            const leaf = new X509Certificate(splitPemChain(apache.certificate)![0]);
            if (!leaf.checkHost(apache.serverName) && !(isIP(apache.serverName) && leaf.checkIP(apache.serverName))) {
                ctx.addIssue({
                    code: "custom",
                    path: ["certificate"],
                    message: `is not valid for serverName "${apache.serverName}" (subject ${leaf.subject.replace(/\n/g, ", ")})`,
                });
            }
        }
    });

export type ApacheConfig = z.infer<typeof apacheSchema>;

/** The names an ACME certificate covers: acme.domains, else serverName and its aliases. */
export function acmeDomains(apache: ApacheConfig): string[] {
    // Lowercase and each once, as the CA writes them into the certificate.
    return [...new Set((apache.acme?.domains ?? [apache.serverName!, ...apache.serverAliases]).map((name) => name.toLowerCase()))];
}
