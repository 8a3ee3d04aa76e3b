import { z } from "zod";
import { duration, port, token, unixUser } from "../config/values";

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
    })
    .strict();

export type SshdConfig = z.infer<typeof sshdSchema>;
