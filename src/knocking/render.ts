// Port knocking in the firewall itself: each knock of the sequence moves the source from one
// `recent` list to the next, the last opens the guarded services for `openWindow` seconds.
// No daemon is involved, so nothing can die and leave SSH hidden for good.
import type { KnockingConfig, GuardedService } from "./schema";

export type Family = "v4" | "v6";

export interface KnockRules {
    /** The chain of knock-stage rules, jumped to for packets on the knock ports. */
    chain: { name: string; rules: string[] };
    /** The rule in the firewall's input chain that sends knock packets to `chain`. */
    entry: string;
    /** The match a guarded service's accept rule needs: the source completed the sequence recently. */
    openMatch: string;
}

export const KNOCK_CHAIN = "MORH-KNOCK";

/** `recent` lists are shared by iptables and ip6tables: one set of names per family. */
export function knockListName(family: Family, stage: number | "open"): string {
    return `morh${family === "v4" ? 4 : 6}-${stage === "open" ? "open" : `k${stage}`}`;
}

export function isGuarded(knocking: KnockingConfig, service: string): boolean {
    return knocking.mode !== "off" && knocking.guards.includes(service as GuardedService);
}

export function knockRules(knocking: KnockingConfig, family: Family): KnockRules | undefined {
    if (knocking.mode !== "sequence") return undefined;
    const { sequence, protocol, knockWindow, openWindow } = knocking;
    const proto = `-p ${protocol} -m ${protocol}`;
    const last = sequence.length - 1;
    // Later stages first, so one packet advances the source by one stage only.
    const stages = sequence
        .map((knock, index) => {
            const next = index === last ? knockListName(family, "open") : knockListName(family, index + 1);
            const previous = index === 0 ? "" : ` -m recent --name ${knockListName(family, index)} --rcheck --seconds ${knockWindow} -m recent --name ${knockListName(family, index)} --remove`;
            return `${proto} --dport ${knock}${previous} -m recent --name ${next} --set -j DROP`;
        })
        .reverse();
    // A knock out of order starts the sequence again.
    const resets = sequence.slice(1).map((_, index) => `-m recent --name ${knockListName(family, index + 1)} --remove`);
    return {
        chain: { name: KNOCK_CHAIN, rules: [...stages, ...resets, "-j DROP"] },
        entry: `${proto} -m multiport --dports ${sequence.join(",")} -j ${KNOCK_CHAIN}`,
        openMatch: `-m recent --name ${knockListName(family, "open")} --rcheck --seconds ${openWindow}`,
    };
}

export function describeKnocking(knocking: KnockingConfig): string {
    if (knocking.mode === "off") return "port knocking: off";
    return `port knocking (${knocking.mode}): ${knocking.sequence.join(", ")}/${knocking.protocol} opens ${knocking.guards.join(", ")} for ${knocking.openWindow}s${knocking.trustedBypass ? " (trusted sources bypass)" : ""}`;
}
