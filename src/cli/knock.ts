// `mor-harden knock`: the knock-guarded services of an environment's hosts opened for this machine.
import { ConfigError } from "../config/schema";
import { secretsWithoutPulumi } from "../config/secrets";
import { fwknoprcStanza, knockSpecOf, sendKnock, spaKeysOf } from "../knocking/client";
import { generateSpaKeys } from "../knocking/spa";
import { stackTargets, targetHosts, type TargetOptions } from "./targets";

export interface KnockOptions extends TargetOptions {
    keyGen?: boolean;
    clientConfig?: boolean;
}

export async function knockCommand(options: KnockOptions): Promise<void> {
    if (options.keyGen) {
        const keys = generateSpaKeys();
        process.stdout.write(`KEY_BASE64: ${keys.key}\nHMAC_KEY_BASE64: ${keys.hmacKey}\n`);
        return;
    }
    for (const { host } of targetHosts(stackTargets(options, { exactlyOne: true }), options.host)) {
        const spec = knockSpecOf(host.config);
        if (!spec) throw new ConfigError(host.source, ["knocking.mode: is off: there is nothing to knock"]);
        const address = host.config.connection.address;
        if (options.clientConfig) {
            process.stdout.write(fwknoprcStanza(host.name, address, spec));
            continue;
        }
        const keys = spaKeysOf(secretsWithoutPulumi(host.config, host.source, process.env, host.name));
        if (spec.mode === "spa" && !keys)
            throw new ConfigError(host.source, ["knockKey: no SPA keys (knocking.spa.keyFile, or MOR_HARDEN_KNOCK_KEY and MOR_HARDEN_KNOCK_HMAC_KEY)"]);
        await sendKnock(spec, address, keys);
        const { openWindow, guards } = host.config.knocking;
        console.log(`knocked on ${address} (${spec.mode}): ${guards.join(", ")} open for this machine for ${openWindow} s`);
    }
}
