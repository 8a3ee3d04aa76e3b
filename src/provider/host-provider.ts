// The Pulumi dynamic provider that hardens one host. The engine serializes this object into the
// stack's state and runs it in another process (`@pulumi/pulumi/cmd/dynamic-provider`), so each
// method loads the real code from the project at run time and captures nothing: no schema, no
// SSH client, no secret, no class state. See runtime.ts for what the methods do.
import * as pulumi from "@pulumi/pulumi";
import type { HostInputs, HostState } from "./runtime";

/**
 * The project's compiled runtime module, found from the directory `pulumi` runs in (the project,
 * where Pulumi.yaml is) or $MOR_HARDEN_HOME. Resolved when a method runs, not when the provider is
 * serialized, so state written by an earlier version runs today's code.
 */
function loadRuntime(): typeof import("./runtime") {
    const root = process.env.MOR_HARDEN_HOME || process.cwd();
    return require(require("path").join(root, "dist", "src", "provider", "runtime.js"));
}

export const hostProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: HostState, news: HostInputs): Promise<pulumi.dynamic.DiffResult> {
        const runtime = loadRuntime();
        const previous = runtime.upgradeState(olds);
        const changed = runtime.changedConcerns(previous, news);
        // Another host key is another machine: replace (create the new one first, then delete the old).
        const replaces = previous.session.hostKey !== news.session.hostKey ? ["session"] : [];
        return { changes: changed.length > 0 || replaces.length > 0, replaces, deleteBeforeReplace: false, stables: [] };
    },
    async create(inputs: HostInputs): Promise<pulumi.dynamic.CreateResult> {
        return loadRuntime().create(inputs);
    },
    async update(_id: string, olds: HostState, news: HostInputs): Promise<pulumi.dynamic.UpdateResult> {
        return { outs: await loadRuntime().update(olds, news) };
    },
    async read(id: string, props: HostState): Promise<pulumi.dynamic.ReadResult> {
        return { id, props: await loadRuntime().read(props) };
    },
    async delete(id: string, props: HostState): Promise<void> {
        await loadRuntime().remove(id, props);
    },
};

export interface HostHardeningArgs {
    session: pulumi.Input<HostInputs["session"]>;
    os: pulumi.Input<HostInputs["os"]>;
    confirmSeconds: pulumi.Input<number>;
    renderedForOpenssh: pulumi.Input<string>;
    plans: pulumi.Input<HostInputs["plans"]>;
    /** Must be a secret Output: it holds the SSH and TLS private keys. */
    secrets: pulumi.Input<HostInputs["secrets"]>;
}

/** The files and services of one host, kept as rendered; `read` shows drift. */
export class HostHardening extends pulumi.dynamic.Resource {
    declare readonly files: pulumi.Output<HostState["files"]>;
    declare readonly secretFiles: pulumi.Output<HostState["secretFiles"]>;
    declare readonly running: pulumi.Output<HostState["running"]>;
    declare readonly stateVersion: pulumi.Output<number>;

    constructor(name: string, args: HostHardeningArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            hostProvider,
            name,
            { ...args, secrets: pulumi.secret(args.secrets), files: undefined, secretFiles: undefined, running: undefined, stateVersion: undefined },
            // A dynamic provider sees secrets in plain text and only re-marks outputs named like a
            // secret input: the digests of secret files are listed here.
            { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "secretFiles"] },
            "mor-harden",
            "HostHardening",
        );
    }
}
