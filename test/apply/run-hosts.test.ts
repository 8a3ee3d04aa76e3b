// runHostsChanging: an apply's hosts, more read at once than changed at once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { HostOfEnvironment } from "../../src/config/environment";
import { APPLY_READS_AT_ONCE, runHostsChanging } from "../../src/apply/run-hosts";

/** Stand-in hosts: runHostsChanging only hands them back to `runOne`. */
const hosts = (count: number) => Array.from({ length: count }, (_, index) => ({ name: `h${index}` }) as unknown as HostOfEnvironment);

/** Counts how many are in a phase at once, at most. */
class Gauge {
    now = 0;
    most = 0;
    async during(ms: number): Promise<void> {
        this.most = Math.max(this.most, ++this.now);
        await sleep(ms);
        this.now--;
    }
}

describe("runHostsChanging", () => {
    it("reads up to APPLY_READS_AT_ONCE hosts at once, changes at most `changes` at once, results in the hosts' order", async () => {
        const reading = new Gauge();
        const changing = new Gauge();
        const count = APPLY_READS_AT_ONCE + 10;
        const results = await runHostsChanging(hosts(count), 3, async (host, changeSlot) => {
            await reading.during(20);
            // Every other host has something to change.
            const index = Number((host as unknown as { name: string }).name.slice(1));
            if (index % 2 === 0) await changeSlot(() => changing.during(10));
            return index;
        });
        assert.deepEqual(
            results,
            Array.from({ length: count }, (_, index) => index),
        );
        assert.equal(reading.most, APPLY_READS_AT_ONCE);
        assert.equal(changing.most, 3);
    });

    it("reads as many as it changes when --concurrency is above APPLY_READS_AT_ONCE", async () => {
        const reading = new Gauge();
        const changes = APPLY_READS_AT_ONCE + 5;
        await runHostsChanging(hosts(changes + 5), changes, async (_host, changeSlot) => {
            await reading.during(20);
            await changeSlot(() => sleep(5));
        });
        assert.equal(reading.most, changes);
    });
});
