// `mor-harden render`: every artifact of an environment's hosts, printed and written under --out.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { renderHost } from "../compose/host";
import { opensshVersion } from "../config/values";
import { redactSecrets } from "../render/artifact";
import { prepareRenderInput } from "../render/prepare";
import { staticResolver } from "./resolver";
import { stackTargets, targetHosts, type TargetOptions } from "./targets";

export interface RenderOptions extends TargetOptions {
    out?: string;
    openssh?: string;
    resolve: Record<string, string[]>;
}

export async function renderCommand(options: RenderOptions): Promise<void> {
    const facts = options.openssh ? { openssh: opensshVersion.parse(options.openssh) } : {};
    const resolver = staticResolver(options.resolve);
    for (const { environment, host } of targetHosts(stackTargets(options, { exactlyOne: true }), options.host)) {
        const plans = renderHost(await prepareRenderInput(host.label, host.config, { facts, resolver, source: host.source }));
        const out = options.out && resolve(options.out, environment.form === "hosts" ? host.name : ".");
        if (environment.form === "hosts") console.log(`== ${host.name} (${host.config.connection.address})`);
        for (const plan of plans) {
            console.log(`${plan.concern}:`);
            for (const line of plan.summary) console.log(`  ${line}`);
            for (const artifact of plan.artifacts) {
                console.log(`  ${artifact.path} (${artifact.mode} ${artifact.owner}:${artifact.group}${artifact.secret ? ", secret" : ""})`);
                if (out) {
                    const path = join(out, artifact.path);
                    mkdirSync(dirname(path), { recursive: true });
                    writeFileSync(path, redactSecrets(artifact.content), { mode: 0o600 });
                }
            }
        }
        if (out) console.log(`written under ${out}`);
    }
}
