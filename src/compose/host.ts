// Every concern's plan for one host, in the order they are applied: the firewall first (so
// fail2ban's ban action finds INPUT as it will stay), then the services behind it. The one
// place that knows every concern: it imports them all (a concern may import config, render and
// the concerns it renders rules for; never the effects: test/structure/imports.test.ts).
import { renderApache } from "../apache/render";
import { hasSets, renderBlocklists } from "../blocklists/render";
import { renderFail2ban } from "../fail2ban/render";
import { renderFirewall } from "../firewall/render";
import { describeKnocking, renderKnockingServer } from "../knocking/render";
import { renderSshd } from "../sshd/render";
import { renderSystem } from "../system/render";
import { systemHasParts } from "../system/schema";
import type { HostConfig } from "../config/schema";
import type { Concern, ConcernPlan } from "../render/artifact";
import type { RenderInput } from "../render/input";

/**
 * The concerns in apply order, each with whether a config has it, known before any name is
 * resolved: fwknopd (spa knocking) first, the firewall it follows lets guarded services in through
 * it only; the blocklists' sets before the firewall, whose rules name them.
 */
const concernOrder: { concern: Concern; render: (input: RenderInput) => ConcernPlan | undefined; enabled: (config: HostConfig) => boolean }[] = [
    { concern: "knocking", render: renderKnockingServer, enabled: (config) => config.knocking.mode === "spa" },
    // The operating system before the services: sshd's optional Banner names the /etc/issue.net it writes.
    { concern: "system", render: renderSystem, enabled: (config) => systemHasParts(config.system) },
    { concern: "blocklists", render: renderBlocklists, enabled: (config) => hasSets(config.firewall) },
    { concern: "firewall", render: renderFirewallWithKnocking, enabled: () => true },
    { concern: "sshd", render: renderSshd, enabled: () => true },
    { concern: "fail2ban", render: renderFail2ban, enabled: () => true },
    { concern: "apache", render: renderApache, enabled: (config) => config.apache.enabled },
];

function renderFirewallWithKnocking(input: RenderInput): ConcernPlan {
    const firewall = renderFirewall(input);
    firewall.summary.push(describeKnocking(input.config.knocking));
    return firewall;
}

/** The concerns a config renders, in apply order. */
export function concernsOf(config: HostConfig): Concern[] {
    return concernOrder.filter((entry) => entry.enabled(config)).map((entry) => entry.concern);
}

export function renderHost(input: RenderInput): ConcernPlan[] {
    return concernOrder
        .filter((entry) => entry.enabled(input.config))
        .map((entry) => entry.render(input))
        .filter((plan): plan is ConcernPlan => plan !== undefined);
}
