import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ansibleRunsPerSize } from "../../bench/fleet";

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
