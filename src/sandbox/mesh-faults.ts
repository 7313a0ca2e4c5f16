import type { Fault, WorkloadInstance } from './mesh-types.js';

/** Fault knobs per workload (app or Deployment name), optionally per version; the most specific applies. */
export class FaultTable {
  private readonly faults = new Map<string, Fault>();

  /** Sets (or, with null or all-zero knobs, clears) a fault and refreshes the instances'; returns how many it affects. */
  set(
    workload: string,
    version: string | undefined,
    fault: Fault | null,
    instances: Iterable<WorkloadInstance>,
  ): number {
    const key = `${workload}|${version ?? '*'}`;
    if (fault && Object.values(fault).some((v) => v !== undefined && v !== 0))
      this.faults.set(key, { ...fault });
    else this.faults.delete(key);
    let affected = 0;
    for (const inst of instances) {
      inst.fault = this.for(inst);
      if ((inst.app === workload || inst.name === workload) && (!version || inst.version === version))
        affected++;
    }
    return affected;
  }

  list(): Array<{ workload: string; version?: string; fault: Fault }> {
    return [...this.faults].map(([k, fault]) => {
      const [workload, version] = k.split('|');
      return { workload, version: version === '*' ? undefined : version, fault };
    });
  }

  for(i: WorkloadInstance): Fault | undefined {
    return (
      this.faults.get(`${i.name}|*`) ??
      this.faults.get(`${i.app}|${i.version}`) ??
      this.faults.get(`${i.app}|*`)
    );
  }
}
