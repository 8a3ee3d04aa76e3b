// Port knocking in the firewall itself: each knock of the sequence moves the source from one
// `recent` list to the next, the last opens the guarded services for `openWindow` seconds.
// No daemon is involved, so nothing can die and leave SSH hidden for good.
import type { Family } from "../config/family";
import { file, secretPlaceholder, type ConcernPlan } from "../render/artifact";
import type { RenderInput } from "../render/input";
import { renderTemplate } from "../render/templates";
import { waitUntil } from "../render/shell";
import { knockSpecOf } from "./client";
import type { KnockingConfig, GuardedService } from "./schema";

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
            const previous =
                index === 0
                    ? ""
                    : ` -m recent --name ${knockListName(family, index)} --rcheck --seconds ${knockWindow} -m recent --name ${knockListName(family, index)} --remove`;
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
    const knock = knocking.mode === "sequence" ? `${knocking.sequence.join(", ")}/${knocking.protocol}` : `an SPA packet to udp/${knocking.spa.port}`;
    return `port knocking (${knocking.mode}): ${knock} opens ${knocking.guards.join(", ")} for ${knocking.openWindow}s${knocking.trustedBypass ? " (trusted sources bypass)" : ""}`;
}

const FWKNOP_DIR = "/etc/fwknop";
// Restarted when running (new keys or ports), started otherwise; systemd where there is one.
const FWKNOPD_START = "systemctl enable fwknop-server 2>/dev/null; systemctl restart fwknop-server 2>/dev/null || { fwknopd -K >/dev/null 2>&1; fwknopd; }";

/**
 * Drops from `iptables -S FWKNOP_INPUT` the rules fwknopd adds itself (one source, a comment with
 * its expiry time, ACCEPT): what is left was added by someone else, and is drift. fwknopd owns the
 * chain, so the firewall's own view leaves it out.
 */
export const FWKNOP_FOREIGN_RULES = `grep '^-A ' | grep -vE '^-A FWKNOP_INPUT -s [0-9.]+/32 (.* )?-m comment --comment "?_exp_[0-9]+"? -j ACCEPT$'`;

/**
 * fwknopd for spa mode: its config, who may open what (the keys, filled in on the host only),
 * and Debian's switch that lets it start. Applied before the firewall, which then drops the
 * guarded services' own accept rules: fwknopd must be up to let anyone in.
 */
export function renderKnockingServer(input: RenderInput): ConcernPlan | undefined {
    const { knocking } = input.config;
    const spec = knockSpecOf(input.config);
    if (spec?.mode !== "spa") return undefined;
    const data = { stack: input.stack, port: knocking.spa.port };
    return {
        concern: "knocking",
        summary: [`fwknopd on udp/${knocking.spa.port} (pcap) opens ${spec.access.join(", ")} for ${knocking.openWindow}s to a valid SPA packet`],
        packages: ["fwknop-server"],
        artifacts: [
            file(`${FWKNOP_DIR}/fwknopd.conf`, renderTemplate("knocking/fwknopd.conf.hbs", data), { mode: "0600" }),
            file(
                `${FWKNOP_DIR}/access.conf`,
                renderTemplate("knocking/access.conf.hbs", {
                    ...data,
                    openPorts: spec.access.join(", "),
                    openWindow: knocking.openWindow,
                    key: secretPlaceholder("knockKey"),
                    hmacKey: secretPlaceholder("knockHmacKey"),
                }),
                { mode: "0600", secret: true },
            ),
            file("/etc/default/fwknop-server", renderTemplate("knocking/default.hbs", data)),
        ],
        prepare: [],
        validate: [`fwknopd --dump-config -c ${FWKNOP_DIR}/fwknopd.conf -a ${FWKNOP_DIR}/access.conf >/dev/null`],
        activate: [FWKNOPD_START],
        verify: [waitUntil("pgrep -x fwknopd >/dev/null", "fwknopd is not running")],
        snapshot: [],
        rollback: [],
        rollbackCheck: [],
        deactivate: ["systemctl disable --now fwknop-server 2>/dev/null; fwknopd -K >/dev/null 2>&1; true"],
        liveViews: [
            {
                name: "fwknopd's chain: rules fwknopd did not add (iptables -S FWKNOP_INPUT)",
                live: `iptables -w -S FWKNOP_INPUT 2>/dev/null | ${FWKNOP_FOREIGN_RULES}`,
                expected: { text: "" },
            },
        ],
        // New keys could keep the operator out: confirmed by a new login that knocks with them.
        needsConfirm: true,
    };
}
