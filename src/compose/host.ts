// Every concern's plan for one host, in the order they are applied: the firewall first (so
// fail2ban's ban action finds INPUT as it will stay), then the services behind it. The one
// place that knows every concern: it imports them, and they import only src/render's primitives.
import { renderApache } from "../apache/render";
import { renderBlocklists } from "../blocklists/render";
import { renderFail2ban } from "../fail2ban/render";
import { renderFirewall } from "../firewall/render";
import { describeKnocking, renderKnockingServer } from "../knocking/render";
import { renderSshd } from "../sshd/render";
import type { HostConfig } from "../config/schema";
import type { Concern, ConcernPlan } from "../render/artifact";
import type { RenderInput } from "../render/input";

/** The concerns a config renders, in apply order, known before any name is resolved. */
export function concernsOf(config: HostConfig): Concern[] {
    return [...(config.knocking.mode === "spa" ? (["knocking"] as const) : []), ...(config.firewall.blocklists.length > 0 ? (["blocklists"] as const) : []), "firewall", "sshd", "fail2ban", ...(config.apache.enabled ? (["apache"] as const) : [])];
}

export function renderHost(input: RenderInput): ConcernPlan[] {
    const firewall = renderFirewall(input);
    firewall.summary.push(describeKnocking(input.config.knocking));
    // fwknopd (spa knocking) first: the firewall it follows lets guarded services in through it only.
    // The blocklists' sets before the firewall, whose rules name them.
    return [renderKnockingServer(input), renderBlocklists(input), firewall, renderSshd(input), renderFail2ban(input), renderApache(input)].filter((plan): plan is ConcernPlan => plan !== undefined);
}
