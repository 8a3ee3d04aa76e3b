// The contract between a large file sent as its changes (apply/bulk.ts, the transaction) and the
// plan's own commands (validate, activate), which may work on the changed lines only.

/**
 * Where a transaction leaves the changed lines of artifact `index` when it was sent as its changes
 * (absent otherwise), for the plan's own commands (validate, activate) to work on them only.
 */
export function changedLines(index: number): { removed: string; added: string } {
    return { removed: `"$MORH_TX/removed.${index}"`, added: `"$MORH_TX/added.${index}"` };
}
