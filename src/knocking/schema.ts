import { z } from "zod";
import { absolutePath, duration, port } from "../config/values";

export const guardableServices = ["ssh", "http", "https", "ami"] as const;
export type GuardedService = (typeof guardableServices)[number];

export const knockingSchema = z
    .object({
        /**
         * off; sequence: a port sequence enforced by the firewall itself (iptables `recent`: no
         * daemon to die); spa: fwknop's single packet authorization (fwknopd), which a sniffed
         * packet cannot replay.
         */
        mode: z
            .enum(["off", "sequence", "spa"], { error: (iss) => `${JSON.stringify(iss.input)} is not a knocking mode (off, sequence or spa)` })
            .default("off"),
        sequence: z.array(port).max(10).default([]),
        protocol: z.enum(["tcp", "udp"]).default("tcp"),
        /** Seconds allowed between two knocks of the sequence. */
        knockWindow: duration.default(10),
        /** Seconds the guarded services stay open for a source after a complete sequence. */
        openWindow: duration.default(30),
        guards: z
            .array(z.enum(guardableServices, { error: (iss) => `${JSON.stringify(iss.input)} is not a guardable service (${guardableServices.join(", ")})` }))
            .default(["ssh"]),
        /** Trusted sources reach guarded services without knocking only when this is true. */
        trustedBypass: z.boolean().default(false),
        spa: z
            .object({
                /** The UDP port fwknopd watches (with pcap: it stays closed in the firewall). */
                port: port.default(62201),
                /**
                 * The keys as a file on the operator's machine (`fwknop --key-gen` prints this
                 * format), when not set as the secrets knockKey and knockHmacKey.
                 */
                keyFile: absolutePath.optional(),
            })
            .strict()
            .default({ port: 62201 }),
    })
    .strict()
    .superRefine((knocking, ctx) => {
        if (knocking.mode === "off") return;
        if (knocking.guards.length === 0) ctx.addIssue({ code: "custom", path: ["guards"], message: "names no service to guard" });
        if (knocking.mode !== "sequence") return;
        if (knocking.sequence.length < 3)
            ctx.addIssue({ code: "custom", path: ["sequence"], message: `has ${knocking.sequence.length} ports; a knock sequence needs at least 3` });
        knocking.sequence.forEach((knock, index) => {
            if (knocking.sequence.indexOf(knock) !== index)
                ctx.addIssue({ code: "custom", path: ["sequence", index], message: `${knock} appears twice in the sequence` });
        });
    });

export type KnockingConfig = z.infer<typeof knockingSchema>;
