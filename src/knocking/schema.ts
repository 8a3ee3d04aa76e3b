import { z } from "zod";
import { duration, port } from "../config/values";

export const guardableServices = ["ssh", "http", "https", "ami"] as const;
export type GuardedService = (typeof guardableServices)[number];

export const knockingSchema = z
    .object({
        /** off, or a port sequence enforced by the firewall itself (iptables `recent`: no daemon to die). */
        mode: z.enum(["off", "sequence"], { error: (iss) => `${JSON.stringify(iss.input)} is not a knocking mode (off or sequence)` }).default("off"),
        sequence: z.array(port).max(10).default([]),
        protocol: z.enum(["tcp", "udp"]).default("tcp"),
        /** Seconds allowed between two knocks of the sequence. */
        knockWindow: duration.default(10),
        /** Seconds the guarded services stay open for a source after a complete sequence. */
        openWindow: duration.default(30),
        guards: z.array(z.enum(guardableServices, { error: (iss) => `${JSON.stringify(iss.input)} is not a guardable service (${guardableServices.join(", ")})` })).default(["ssh"]),
        /** Trusted sources reach guarded services without knocking only when this is true. */
        trustedBypass: z.boolean().default(false),
    })
    .strict()
    .superRefine((knocking, ctx) => {
        if (knocking.mode === "off") return;
        if (knocking.sequence.length < 3) ctx.addIssue({ code: "custom", path: ["sequence"], message: `has ${knocking.sequence.length} ports; a knock sequence needs at least 3` });
        knocking.sequence.forEach((knock, index) => {
            if (knocking.sequence.indexOf(knock) !== index) ctx.addIssue({ code: "custom", path: ["sequence", index], message: `${knock} appears twice in the sequence` });
        });
        if (knocking.guards.length === 0) ctx.addIssue({ code: "custom", path: ["guards"], message: "names no service to guard" });
    });

export type KnockingConfig = z.infer<typeof knockingSchema>;
