// The Pulumi program: one stack, one environment, one MorHost per host. `pulumi up` validates
// the whole stack config before anything else (a bad key is an error naming it and its host, and
// no resource is declared), then declares every host with one child per concern. Hosts share no
// resource and depend on none of each other's, so the engine changes them in parallel (bounded by
// `pulumi up --parallel N`), and a host that fails leaves the others to finish.
import * as pulumi from "@pulumi/pulumi";
import type { EnvironmentHost } from "./config/environment";
import { readPulumiConfig } from "./pulumi/config";
import { MorHost } from "./pulumi/host";

/** What the stack outputs about one host. */
function hostOutputs(host: MorHost) {
    return {
        address: host.address,
        hardening: host.hardening.urn,
        trustedSources: host.trustedSources,
        files: pulumi.all(Object.fromEntries(Object.entries(host.concerns).map(([concern, component]) => [concern, component.artifacts]))),
    };
}

export = async () => {
    const { environment, secretsOf } = readPulumiConfig();
    const declare = (host: EnvironmentHost) =>
        // In the single-host form the host is named after the stack, as every stack's host was
        // before environments: the same URNs, so existing state is kept as it is. The host that was
        // a stack's single host (formerStackHost) keeps its resources through aliases.
        new MorHost(host.name, { stack: host.label, source: host.source, config: host.config, secrets: secretsOf(host), formerName: host.formerName });
    if (environment.form === "single") return hostOutputs(declare(environment.hosts[0]));
    return { hosts: pulumi.output(Object.fromEntries(environment.hosts.map((host) => [host.name, hostOutputs(declare(host))]))) };
};
