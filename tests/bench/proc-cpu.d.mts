/** See proc-cpu.mjs. */
export function cpuMs(statFile: string): number | undefined;
export function threadCpuMs(): number | undefined;
