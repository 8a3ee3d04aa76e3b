// One concern of one host (firewall, sshd, fail2ban, apache) as a Pulumi component.
import * as pulumi from "@pulumi/pulumi";
import { desiredDigests, type Concern, type ConcernPlan, type FileDigest } from "../render/artifact";

export interface ConcernArgs {
    concern: Concern;
    plan: pulumi.Input<ConcernPlan>;
    /** The host's secrets (a secret Output): whatever is derived from them stays secret. */
    secrets: pulumi.Input<Record<string, string | undefined>>;
}

export class ConcernComponent extends pulumi.ComponentResource {
    /** What the preview shows: resolved sources, chosen directives. */
    readonly summary: pulumi.Output<string[]>;
    /** The managed files with the digest of their content; secret when a secret is in them. */
    readonly artifacts: pulumi.Output<FileDigest[]>;

    constructor(name: string, args: ConcernArgs, opts?: pulumi.ComponentResourceOptions) {
        super(`mor-harden:host:${args.concern}`, name, {}, opts);
        const plan = pulumi.output(args.plan);
        this.summary = plan.summary;
        this.artifacts = pulumi.all([args.plan, args.secrets]).apply(([resolved, secrets]) => desiredDigests(resolved as ConcernPlan, secrets));
        this.registerOutputs({ summary: this.summary, artifacts: this.artifacts });
    }
}
