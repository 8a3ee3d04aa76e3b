import { z } from "zod";
import { absolutePath, duration, hostAddress, hostKeyFingerprint, port, unixUser } from "./values";

/** How mor-harden reaches the host. The private key itself is the secret `privateKey`, a file, or the ssh-agent. */
export const connectionSchema = z
    .object({
        address: hostAddress,
        port: port.default(22),
        user: unixUser.default("root"),
        /** The host key fingerprint as `ssh-keygen -lf` prints it; the connection is refused on mismatch. */
        hostKey: hostKeyFingerprint,
        /** Run host commands through sudo (defaults to true when the user is not root). */
        sudo: z.boolean().optional(),
        /** A private key file on the operator's machine, when the key is not the secret `privateKey`. */
        privateKeyFile: absolutePath.optional(),
        /** Use the ssh-agent at $SSH_AUTH_SOCK when no key is given. */
        agent: z.boolean().default(true),
        connectTimeout: duration.default(15),
        commandTimeout: duration.default(120),
        /** Seconds after which an unconfirmed firewall/sshd change rolls itself back on the host. */
        confirmTimeout: duration.default(60),
        /**
         * `port` is forwarded to sshd.port (NAT, a jump relay): sshd does not listen on it. Otherwise a
         * `port` that differs from sshd.port means SSH is moving, and sshd listens on both.
         */
        forwarded: z.boolean().default(false),
    })
    .strict()
    .transform((connection) => ({ ...connection, sudo: connection.sudo ?? connection.user !== "root" }));

export type ConnectionConfig = z.infer<typeof connectionSchema>;
