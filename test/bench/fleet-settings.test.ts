import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ansibleRunsPerSize } from "../../bench/fleet";
import { figureKey } from "../../bench/stats";

describe("fleet benchmark settings", () => {
    it("takes one Ansible run count for every size, or one per size", () => {
        assert.deepEqual(ansibleRunsPerSize([1, 5, 20], "3"), [3, 3, 3]);
        assert.deepEqual(ansibleRunsPerSize([1, 5, 20], "3, 3,1"), [3, 3, 1]);
    });

    it("refuses a count that is not a whole number of runs, or a list that does not fit the sizes", () => {
        assert.throws(() => ansibleRunsPerSize([1, 5, 20], "3,1"), /BENCH_ANSIBLE_RUNS="3,1".*3 sizes: 1,5,20/);
        assert.throws(() => ansibleRunsPerSize([1], "0"), /whole number of runs/);
        assert.throws(() => ansibleRunsPerSize([1], "two"), /whole number of runs/);
    });
});

describe("benchmark results", () => {
    it("replace the earlier figure of the same measure, whatever bytes were counted with it", () => {
        assert.equal(
            figureKey("mor-harden drift, clean, 5 hosts (1 round trips, 58679 B a host)"),
            figureKey("mor-harden drift, clean, 5 hosts (1 round trips, 58703 B a host)"),
        );
        assert.notEqual(
            figureKey("mor-harden drift, clean, 5 hosts (1 round trips, 58679 B a host)"),
            figureKey("mor-harden drift, clean, 20 hosts (1 round trips, 58679 B a host)"),
        );
        assert.equal(figureKey("  drift / floor (5)"), "  drift / floor (5)");
    });
});
