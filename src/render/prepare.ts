// From a validated config to the render input: the effects before rendering (resolving names)
// and the facts assumed when no host is asked.
import { defaultFacts, type HostFacts } from "../config/os";
import { resolveSources, type Resolver } from "../config/resolve";
import type { HostConfig } from "../config/schema";
import type { RenderInput } from "./input";

/** Facts the stack states (`host:`) over the OS family's defaults, under facts read from a host. */
export function assumedFacts(config: HostConfig, read: Partial<HostFacts> = {}): HostFacts {
    return { ...defaultFacts(config.os), ...(config.host.openssh ? { openssh: config.host.openssh } : {}), ...read };
}

export async function prepareRenderInput(
    stack: string,
    config: HostConfig,
    options: { resolver?: Resolver; facts?: Partial<HostFacts>; source?: string } = {},
): Promise<RenderInput> {
    return { stack, config, facts: assumedFacts(config, options.facts), sources: await resolveSources(config, options.resolver, options.source) };
}
