import { z } from "zod";
import { duration, port, source, token, unixUser } from "../config/values";
import { KOLMISOFT_SUPPORT } from "../firewall/schema";

/** An OpenSSH public key line: type and base64, an optional comment (no options: mor-harden writes those). */
const publicKey = token("an OpenSSH public key (type, base64, optional comment)", (v) =>
    /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+=*( [ -~]*)?$/.test(v),
);

/**
 * How Kolmisoft support logs in once sshd takes keys only (the guide lets support.kolmisoft.com
 * through the firewall). off: not at all. keys: support's public keys, in a file mor-harden
 * manages, each usable only from support's addresses. password: password authentication for
 * `user` from support's addresses only (a Match Address block). RISK of password: anyone who
 * sends from those addresses (support's network, a NAT shared with others, a stale address
 * after support's DNS changes: names are resolved at render time) may guess the password, and
 * fail2ban never bans a trusted source; prefer keys.
 */
const supportAccess = z
    .object({
        mode: z.enum(["off", "keys", "password"], { error: (iss) => `${JSON.stringify(iss.input)} is not off, keys or password` }).default("off"),
        user: unixUser.default("root"),
        keys: z.array(publicKey).default([]),
        /** Support's addresses or names; support.kolmisoft.com when not given. */
        sources: z.array(source).min(1).default([KOLMISOFT_SUPPORT]),
    })
    .strict()
    .superRefine((value, ctx) => {
        if (value.mode === "keys" && value.keys.length === 0)
            ctx.addIssue({ code: "custom", path: ["keys"], message: "mode keys needs support's public keys" });
    });
export type SupportAccess = z.infer<typeof supportAccess>;

/** An OpenSSH algorithm name ("curve25519-sha256", "aes256-gcm@openssh.com"). */
const algorithm = token("an OpenSSH algorithm name", (v) => /^[a-z0-9][a-z0-9.@+_-]{1,80}$/.test(v));

export const sshdSchema = z
    .object({
        port: port.default(22),
        permitRootLogin: z.enum(["prohibit-password", "no"]).default("prohibit-password"),
        /**
         * Each key an agent offers counts as one try: 6 lets an agent with 5 keys in; lower
         * values lock out operators (sshd logs failures only after half of them).
         */
        maxAuthTries: z.number().int().min(3).max(20).default(6),
        loginGraceTime: duration.default(30),
        /** start:rate:full for unauthenticated connections. */
        maxStartups: token('a MaxStartups value like "10:30:60"', (v) => /^\d{1,4}(:\d{1,3}:\d{1,4})?$/.test(v)).default("10:30:60"),
        /** Unauthenticated connections per source (OpenSSH 8.5+; ignored on older servers). */
        perSourceMaxStartups: z.number().int().min(1).max(100).default(5),
        /** OpenSSH 9.8+ penalties for misbehaving sources; trusted sources are always exempt. */
        perSourcePenalties: z.boolean().default(true),
        /**
         * Sessions (shells, commands) per connection. mor-harden runs one command at a time over
         * one connection (src/ssh/session.ts); 4 leaves room for an operator's multiplexed
         * terminals (ssh ControlMaster). Lynis suggests 2.
         */
        maxSessions: z.number().int().min(1).max(64).default(4),
        clientAliveInterval: duration.default(300),
        clientAliveCountMax: z.number().int().min(1).max(10).default(2),
        /** Only these users may log in; must include the connection user. */
        allowUsers: z.array(unixUser).optional(),
        allowTcpForwarding: z.boolean().default(false),
        allowAgentForwarding: z.boolean().default(false),
        x11Forwarding: z.boolean().default(false),
        /** Override the modern algorithm lists (rarely needed: old SIP provisioning tools). */
        kexAlgorithms: z.array(algorithm).min(1).optional(),
        ciphers: z.array(algorithm).min(1).optional(),
        macs: z.array(algorithm).min(1).optional(),
        hostKeyAlgorithms: z.array(algorithm).min(1).optional(),
        /**
         * rhel only: "respect" leaves algorithms to the system crypto policy (set it with
         * update-crypto-policies); "override" writes them in the drop-in, which wins on RHEL 9.
         */
        rhelCryptoPolicy: z.enum(["respect", "override"]).default("respect"),
        support: supportAccess.default({ mode: "off", user: "root", keys: [], sources: [KOLMISOFT_SUPPORT] }),
    })
    .strict();

export type SshdConfig = z.infer<typeof sshdSchema>;
