// One hardened MOR host: a component with one child per concern. Its children are named after it
// (`mor-2-firewall`), so an alias of the host carries them along.
import * as pulumi from "@pulumi/pulumi";
import type { Resolver } from "../config/resolve";
import type { HostConfig } from "../config/schema";
import { concernsOf, renderHost } from "../compose/host";
import { prepareRenderInput } from "../render/prepare";
import { sessionFor } from "../apply/target";
import { HostHardening } from "../provider/host-provider";
import { ConcernComponent } from "./concern";

export interface MorHostArgs {
    /** What the managed files' headers name: the stack, or `stack/host` in an environment. */
    stack: string;
    /** Where problems found while rendering are reported (the stack, with the host). */
    source?: string;
    config: HostConfig;
    secrets: pulumi.Input<Record<string, string | undefined>>;
    /** The host was the stack's single host, named `formerName`: its resources keep their state through aliases. */
    formerName?: string;
    /** How host names among the trusted sources are resolved (DNS by default). */
    resolver?: Resolver;
}

/**
 * Aliases to the names a host's resource had when the host was named `formerName` (a child's
 * name is its host's name and a suffix; its parent's type chain, the rest of its URN, is the same).
 */
export function formerNameAliases(formerName: string | undefined, suffix = ""): { aliases?: pulumi.Alias[] } {
    return formerName ? { aliases: [{ name: `${formerName}${suffix}` }] } : {};
}

export class MorHost extends pulumi.ComponentResource {
    readonly address: pulumi.Output<string>;
    readonly concerns: Record<string, ConcernComponent>;
    /** The resource that changes the host (and reads it back for drift). */
    readonly hardening: HostHardening;
    /** Every trusted source with the addresses it was resolved to, as the preview shows them. */
    readonly trustedSources: pulumi.Output<Record<string, string[]>>;

    constructor(name: string, args: MorHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mor-harden:index:MorHost", name, {}, { ...opts, ...formerNameAliases(args.formerName) });
        const input = pulumi.output(prepareRenderInput(args.stack, args.config, { resolver: args.resolver, source: args.source ?? `stack ${args.stack}` }));
        const plans = input.apply(renderHost);
        this.address = pulumi.output(args.config.connection.address);
        this.trustedSources = input.apply((resolved) =>
            Object.fromEntries(Object.entries(resolved.sources).map(([source, addresses]) => [source, [...addresses.v4, ...addresses.v6]])),
        );
        this.concerns = Object.fromEntries(
            concernsOf(args.config).map((concern) => [
                concern,
                new ConcernComponent(
                    `${name}-${concern}`,
                    { concern, plan: plans.apply((all) => all.find((plan) => plan.concern === concern)!), secrets: args.secrets },
                    { parent: this, ...formerNameAliases(args.formerName, `-${concern}`) },
                ),
            ]),
        );
        this.hardening = new HostHardening(
            `${name}-hardening`,
            {
                session: sessionFor(args.config),
                os: args.config.os,
                confirmSeconds: args.config.connection.confirmTimeout,
                renderedForOpenssh: input.apply((resolved) => resolved.facts.openssh.join(".")),
                plans,
                secrets: args.secrets,
            },
            // After the concern components, so the preview shows what each concern renders first.
            { parent: this, dependsOn: Object.values(this.concerns), ...formerNameAliases(args.formerName, "-hardening") },
        );
        this.registerOutputs({ address: this.address, trustedSources: this.trustedSources });
    }
}
