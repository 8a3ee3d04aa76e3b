// Value types shared by every concern's schema.
//
// Rendered configs are compiled with handlebars `noEscape` and some values end up in shell
// commands run on the host, so each value type accepts only the characters its meaning
// needs: no value can carry a newline, a quote, a space or a shell metacharacter.
import { isIP } from "node:net";
import { z } from "zod";

const show = (input: unknown): string => JSON.stringify(input) ?? String(input);

/** A string checked by `accepts`; the error names the value and what it should have been. */
export function token(what: string, accepts: (value: string) => boolean) {
    return z.string({ error: (iss) => `${show(iss.input)} is not ${what}` }).refine(accepts, {
        error: (iss) => `${show(iss.input)} is not ${what}`,
    });
}

/** "192.0.2.0/24" or "2001:db8::/32" with a prefix length that fits the family. */
export function isCidr(value: string): boolean {
    const match = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(value);
    if (!match) return false;
    const family = isIP(match[1]);
    const prefix = Number(match[2]);
    return (family === 4 && prefix <= 32) || (family === 6 && prefix <= 128);
}

/** RFC 1123 host name with at least one dot (a bare word is more likely a typo than a host). */
export function isHostname(value: string): boolean {
    if (value.length > 253 || !value.includes(".")) return false;
    if (isIP(value) || /^[0-9.]+$/.test(value)) return false;
    return value.split(".").every((label) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

export const hostname = token("a host name", isHostname);
/** Where a trusted or ignored source may come from: an address, a network, or a name resolved at render time. */
export const source = token("an address, CIDR or host name", (v) => isIP(v) !== 0 || isCidr(v) || isHostname(v));
export const hostAddress = token("an address or host name", (v) => isIP(v) !== 0 || isHostname(v));

export const port = z
    .number({ error: (iss) => `${show(iss.input)} is not a port number` })
    .int({ error: (iss) => `${show(iss.input)} is not a port number` })
    .min(1, { error: (iss) => `${show(iss.input)} is not a port number (1-65535)` })
    .max(65535, { error: (iss) => `${show(iss.input)} is not a port number (1-65535)` });

export interface PortRange {
    from: number;
    to: number;
}

/** 5060, "5060" or "10000-20000"; always a range afterwards. */
export const portRange = z
    .union([z.number(), z.string()], { error: (iss) => `${show(iss.input)} is not a port or port range` })
    .transform((value, ctx): PortRange => {
        const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(String(value));
        const from = match ? Number(match[1]) : NaN;
        const to = match ? Number(match[2] ?? match[1]) : NaN;
        if (!(from >= 1 && to <= 65535 && from <= to)) {
            ctx.addIssue({ code: "custom", message: `${show(value)} is not a port or port range (1-65535, low-high)` });
            return z.NEVER;
        }
        return { from, to };
    });

export function rangesOverlap(a: PortRange, b: PortRange): boolean {
    return a.from <= b.to && b.from <= a.to;
}

export function formatRange(range: PortRange, separator = ":"): string {
    return range.from === range.to ? String(range.from) : `${range.from}${separator}${range.to}`;
}

const durationUnits: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Seconds, as a number or "90s", "10m", "1h", "2d", "1w"; always seconds afterwards. */
export const duration = z.union([z.number(), z.string()], { error: (iss) => `${show(iss.input)} is not a duration` }).transform((value, ctx): number => {
    const match = /^(\d{1,9})([smhdw]?)$/.exec(String(value));
    if (!match || Number(match[1]) <= 0) {
        ctx.addIssue({ code: "custom", message: `${show(value)} is not a duration (seconds, or a number with s, m, h, d or w)` });
        return z.NEVER;
    }
    return Number(match[1]) * durationUnits[match[2] || "s"];
});

export const absolutePath = token(
    "an absolute path of letters, digits, '.', '_', '-' and '/'",
    (v) => /^\/[A-Za-z0-9._/-]*$/.test(v) && !v.split("/").includes(".."),
);

/** A log path for fail2ban: an absolute path that may end in a `*` glob. */
export const logPath = token(
    "an absolute log path (letters, digits, '.', '_', '-', '/' and '*')",
    (v) => /^\/[A-Za-z0-9._/*-]*$/.test(v) && !v.split("/").includes(".."),
);

export const unixUser = token("a user name", (v) => /^[a-z_][a-z0-9_-]{0,31}$/.test(v));

/** An SSH host key fingerprint as `ssh-keygen -lf` prints it. */
export const hostKeyFingerprint = token('a host key fingerprint like "SHA256:" followed by 43 base64 characters', (v) => /^SHA256:[A-Za-z0-9+/]{43}$/.test(v));

/** A config value that must come from `pulumi config set --secret`: only a reference is kept in config. */
export const secretRef = z.object({ secretRef: z.string() }, { error: () => "must be set as a secret (pulumi config set --secret ...), not in plain text" });
export type SecretRef = z.infer<typeof secretRef>;

/** "9.2p1" or "9.8" -> [9, 8]. */
export const opensshVersion = token('an OpenSSH version like "9.2"', (v) => /^\d{1,2}\.\d{1,2}(p\d+)?$/.test(v)).transform((v): [number, number] => {
    const [major, minor] = v.split(/[.p]/).map(Number);
    return [major, minor];
});
