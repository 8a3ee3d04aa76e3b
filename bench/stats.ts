export interface Figure {
    name: string;
    unit: string;
    median: number;
    min: number;
    max: number;
    samples: number;
    target?: number;
    meetsTarget?: boolean;
    /** Throughputs are better higher; times and ratios (the default) lower. */
    better?: "lower" | "higher";
}

export function summarize(name: string, unit: string, samples: number[], target?: number): Figure {
    const sorted = [...samples].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    const median = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    return {
        name,
        unit,
        median,
        min: sorted[0],
        max: sorted.at(-1)!,
        samples: samples.length,
        target,
        meetsTarget: target === undefined ? undefined : median <= target,
    };
}

export function higherIsBetter(figure: Figure): Figure {
    return { ...figure, better: "higher", meetsTarget: figure.target === undefined ? undefined : figure.median >= figure.target };
}

export function printTable(figures: Figure[]): void {
    const number = (value: number) => (Number.isNaN(value) ? "" : value >= 1000 ? value.toFixed(0) : value.toFixed(3));
    const rows = figures.map((figure) => [
        figure.name,
        `${number(figure.median)} ${figure.unit}`,
        number(figure.min),
        number(figure.max),
        figure.target === undefined ? "" : `${figure.meetsTarget ? "meets" : "MISSES"} target ${figure.target.toFixed(2)} ${figure.unit}`,
    ]);
    const header = ["benchmark", "median", "min", "max", "target"];
    const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
    for (const row of [header, ...rows]) console.log(row.map((cell, column) => cell.padEnd(widths[column])).join("  "));
}

/** What a figure measures: its name without the counts measured with it ("(1 round trips, 58194 B a host)"). */
export function figureKey(name: string): string {
    return name.replace(/ \(\d+ round trips?, \d+ B a host\)/, "");
}
