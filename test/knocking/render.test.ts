import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildRuleset, INPUT_CHAIN } from "../../src/firewall/render";
import { knockListName } from "../../src/knocking/render";
import { minimalConfig, renderInputFor } from "../helpers/fixtures";

const knocking = (settings: Record<string, unknown> = {}) => minimalConfig({ knocking: { mode: "sequence", sequence: [7001, 8002, 9003], ...settings } });

describe("port knocking (sequence)", () => {
    it("moves a source through one recent list per knock, the last opening the guarded services", async () => {
        const ruleset = buildRuleset(await renderInputFor(knocking()), "v4");
        const knock = ruleset.chains.find((chain) => chain.name === "MORH-KNOCK")!.rules;
        assert.equal(knock[0], `-p tcp -m tcp --dport 9003 -m recent --name ${knockListName("v4", 2)} --rcheck --seconds 10 -m recent --name ${knockListName("v4", 2)} --remove -m recent --name morh4-open --set -j DROP`);
        assert.equal(knock[2], "-p tcp -m tcp --dport 7001 -m recent --name morh4-k1 --set -j DROP");
        assert.equal(knock.at(-1), "-j DROP");
        const input = ruleset.chains.find((chain) => chain.name === INPUT_CHAIN)!.rules;
        assert.ok(input.includes("-p tcp -m tcp -m multiport --dports 7001,8002,9003 -j MORH-KNOCK"));
    });

    it("gates the guarded service for trusted sources too, unless they bypass", async () => {
        const gated = buildRuleset(await renderInputFor(knocking()), "v4").chains.find((chain) => chain.name === "MORH-TRUSTED")!.rules;
        assert.deepEqual(gated, ["-p tcp -m tcp --dport 22 -m recent --name morh4-open --rcheck --seconds 30 -j MORH-SSH"]);
        const bypass = buildRuleset(await renderInputFor(knocking({ trustedBypass: true })), "v4").chains.find((chain) => chain.name === "MORH-TRUSTED")!.rules;
        assert.deepEqual(bypass, ["-p tcp -m tcp --dport 22 -j MORH-SSH"]);
    });

    it("gates a public guarded service for everyone", async () => {
        const input = buildRuleset(await renderInputFor(knocking({ guards: ["https"] })), "v6").chains.find((chain) => chain.name === INPUT_CHAIN)!.rules;
        assert.ok(input.includes("-p tcp -m tcp --dport 443 -m recent --name morh6-open --rcheck --seconds 30 -j ACCEPT"));
        assert.ok(input.includes("-p tcp -m tcp --dport 80 -j ACCEPT"), "services not guarded stay as they were");
    });
});
