// The Pulumi program: one stack, one MOR host. `pulumi up` validates the stack config before
// anything else (a bad key is an error naming it, and no resource is declared), then declares
// the host with one child per concern.
import * as pulumi from "@pulumi/pulumi";
import { readPulumiConfig } from "./pulumi/config";
import { MorHost } from "./pulumi/host";

export = async () => {
    const { config, secrets } = readPulumiConfig();
    const host = new MorHost(pulumi.getStack(), { stack: pulumi.getStack(), config, secrets });
    return {
        address: host.address,
        hardening: host.hardening.urn,
        trustedSources: host.trustedSources,
        files: pulumi.all(Object.fromEntries(Object.entries(host.concerns).map(([concern, component]) => [concern, component.artifacts]))),
    };
};
