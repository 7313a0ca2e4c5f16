import { it } from '@jest/globals';
import { startReleaseLab } from './helpers/release-lab.js';
import { loadSpec } from '../src/spec/load.js';
import { stageRegistry } from '../src/stages/server/bindings.js';
import { runRelease, releaseStatus } from '../src/stages/index.js';
it('debug', async () => {
  const lab = await startReleaseLab('dbg');
  try {
    const file = lab.writeSpec('dbg', { canary: { steps: [25, 60], window: '1s' } }, { rules: [{ errorRate: { max: '1%' } }, { split: { confidence: 0.999 } }] });
    const { spec } = loadSpec(file);
    const reg = stageRegistry({ platform: lab.sb.platform, evidenceDir: lab.evidenceDir });
    const ctx = { jobId: 'x', attempt: 1 };
    const sig = new AbortController().signal;
    const p = (m: string) => console.log('progress', m);
    console.log(await reg.deploy!(spec, {}, sig, p, ctx));
    console.log(await reg.traffic!(spec, { step: 1 }, sig, p, ctx));
    console.log(JSON.stringify(await reg.load!(spec, { step: 1 }, sig, p, ctx)));
    const st = await releaseStatus(lab.sb.platform, spec);
    console.log('state window', JSON.stringify(st.state?.window).length, JSON.stringify(st.state?.window).slice(0, 1500));
    console.log(JSON.stringify(await reg.gate!(spec, { step: 1 }, sig, p, ctx), null, 1));
    await lab.reset();
    const r = await runRelease(lab.sb.platform, spec, { autoApprove: true, evidenceDir: lab.evidenceDir, onEvent: (e) => e.type === 'verdict' && console.log('release run verdict', JSON.stringify(e)) });
    console.log(r.exitCode, r.state.phase);
  } finally { await lab.stop(); }
}, 300000);
