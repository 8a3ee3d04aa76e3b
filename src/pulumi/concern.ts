// One concern of one host (firewall, sshd, fail2ban, apache) as a Pulumi component.
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { fillSecrets, type Concern, type ConcernPlan } from "../render/artifact";

export interface ConcernArgs {
    concern: Concern;
    plan: pulumi.Input<ConcernPlan>;
    /** The host's secrets (a secret Output): whatever is derived from them stays secret. */
    secrets: pulumi.Input<Record<string, string | undefined>>;
}

export interface ArtifactDigest {
    path: string;
    mode: string;
    owner: string;
    group: string;
    /** SHA-256 of the content as written on the host (secrets filled in). */
    sha256: string;
}

export function digest(plan: ConcernPlan, secrets: Record<string, string | undefined>): ArtifactDigest[] {
    return plan.artifacts.map((artifact) => ({
        path: artifact.path,
        mode: artifact.mode,
        owner: artifact.owner,
        group: artifact.group,
        sha256: createHash("sha256").update(fillSecrets(artifact.content, secrets)).digest("hex"),
    }));
}

export class ConcernComponent extends pulumi.ComponentResource {
    /** What the preview shows: resolved sources, chosen directives. */
    readonly summary: pulumi.Output<string[]>;
    /** The managed files with the digest of their content; secret when a secret is in them. */
    readonly artifacts: pulumi.Output<ArtifactDigest[]>;

    constructor(name: string, args: ConcernArgs, opts?: pulumi.ComponentResourceOptions) {
        super(`mor-harden:host:${args.concern}`, name, {}, opts);
        const plan = pulumi.output(args.plan);
        this.summary = plan.summary;
        this.artifacts = pulumi.all([args.plan, args.secrets]).apply(([resolved, secrets]) => digest(resolved as ConcernPlan, secrets));
        this.registerOutputs({ summary: this.summary, artifacts: this.artifacts });
    }
}
