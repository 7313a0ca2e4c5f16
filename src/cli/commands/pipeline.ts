import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import type { PipelineValidation } from '../../pipelines/validate.js';
import type { GateClient, PipelineExecution } from '../../services/spinnaker.js';
import { MB, readDocument } from '../../spec/input.js';
import { ExitCode, InvalidInputError } from '../../util/errors.js';
import { acceptsOutputFile, action, globalOptions } from '../context.js';
import { checkOutputPaths } from '../output-paths.js';
import { registerRun } from '../pipeline-run.js';
import { registerOrcaConfig } from '../pipeline-orca.js';
import { note, printResult, table } from '../output.js';

/**
 * `clover-cd pipeline ...`: render, validate, save, execute, status. Each subcommand is registered by its
 * own function on the group returned by `pipelineCommand`, so another verb (e.g. `run`) is one more call.
 * The renderer, the validator and the Gate client load when a subcommand runs, not for --help.
 */

async function renderer() {
  const [{ readRenderInput }, { pipelineJson, renderPipeline }, { loadSpec }] = await Promise.all([
    import('../../pipelines/inputs.js'),
    import('../../pipelines/render.js'),
    import('../../spec/load.js'),
  ]);
  return { readRenderInput, pipelineJson, renderPipeline, loadSpec };
}
const validator = () => import('../../pipelines/validate.js');

/** Pipeline JSON from a file or stdin ("-"), through the bounded input layer (exit 2 naming the file). */
function readJsonFile(file: string): unknown {
  return readDocument(file, { maxBytes: 16 * MB, what: 'Spinnaker pipeline JSON', json: true });
}

const looksLikeJson = (file: string) => /\.json$/i.test(file);

/** A spec (rendered) or a pipeline JSON file, validated; throws exit 2 on errors so nothing is sent. */
async function pipelinesFrom(
  file: string,
): Promise<{ configs: Record<string, unknown>[]; validation: PipelineValidation }> {
  const { validatePipelineDocument, toInputProblem } = await validator();
  let doc: unknown;
  if (looksLikeJson(file)) doc = readJsonFile(file);
  else {
    const { readRenderInput, pipelineJson, renderPipeline, loadSpec } = await renderer();
    const { pipeline, notes } = renderPipeline(readRenderInput(loadSpec(file)));
    notes.forEach((n) => note(`note: ${n}`));
    doc = JSON.parse(pipelineJson(pipeline));
  }
  const validation = validatePipelineDocument(doc);
  if (validation.errors) {
    const errors = validation.problems
      .filter((p) => p.severity === 'error')
      .map((p) => toInputProblem(p, file));
    throw new InvalidInputError(`${file}: ${validation.errors} pipeline error(s); nothing was sent`, errors);
  }
  let configs: Record<string, unknown>[];
  if (validation.kind === 'list') configs = doc as Record<string, unknown>[];
  else if (validation.kind === 'dinghyfile') {
    const d = doc as { application: string; pipelines: Record<string, unknown>[] };
    configs = d.pipelines.map((p) => ({ application: d.application, ...p }));
  } else configs = [doc as Record<string, unknown>];
  configs.forEach((c, i) => {
    for (const key of ['application', 'name']) {
      if (typeof c[key] !== 'string' || !c[key])
        throw new InvalidInputError(
          `${file}: pipeline ${i} has no "${key}": Gate needs application and name to save it`,
        );
    }
  });
  return { configs, validation };
}

export function registerRender(group: Command): void {
  const cmd = group
    .command('render')
    .description('render the Spinnaker pipeline JSON for a release spec (canary, blue/green or A/B)')
    .argument('<spec>', 'release spec (YAML or JSON)')
    .addHelpText(
      'after',
      `
Prints the pipeline JSON on stdout, or writes it with -o <file>. The same spec always renders the same
bytes (stable id from application + name, string refIds "1", "2", ...). Nothing is written when the spec
is invalid (exit 2).

Examples:
  clover-cd pipeline render examples/sdc-canary.yaml
  clover-cd pipeline render examples/sdc-canary.yaml -o pipeline.json
  clover-cd pipeline render examples/sdc-ab.yaml | clover-cd pipeline validate -
`,
    )
    .action(
      action(async (specFile: string, _opts: unknown, c: Command) => {
        const g = globalOptions(c);
        checkOutputPaths([{ flag: '-o', path: g.outFile }]);
        const [
          { readRenderInput, pipelineJson, renderPipeline, loadSpec },
          { validatePipelineDocument, formatPipelineProblem },
        ] = await Promise.all([renderer(), validator()]);
        const { pipeline, notes } = renderPipeline(readRenderInput(loadSpec(specFile)));
        notes.forEach((n) => note(`note: ${n}`));
        const text = pipelineJson(pipeline);
        const validation = validatePipelineDocument(JSON.parse(text));
        // The renderer's own output must pass the validator; if not, it is a clover-cd bug, not the user's.
        if (validation.errors)
          throw new Error(
            `rendered pipeline fails validation:\n${validation.problems.map((p) => formatPipelineProblem(p)).join('\n')}`,
          );
        if (g.outFile) {
          writeFileSync(g.outFile, text);
          note(
            `wrote ${g.outFile}: pipeline "${pipeline.name}" (${pipeline.stages.length} stages) for application ${pipeline.application}`,
          );
        } else if (g.output === 'yaml') printResult('yaml', pipeline, () => '');
        else process.stdout.write(text);
        return 0;
      }),
    );
  acceptsOutputFile(cmd);
}

export function registerValidate(group: Command): void {
  group
    .command('validate')
    .description(
      'check Spinnaker pipeline JSON: graph, refIds, types, webhook fields, triggers, SpEL references, artifacts',
    )
    .argument(
      '<file>',
      'a pipeline config, a list of configs, or a Dinghy {application, pipelines:[...]} (JSON; - for stdin)',
    )
    .addHelpText(
      'after',
      `
Every problem names the pipeline, the stage (refId and name), the field and the rule. Exit 2 when there is
at least one error; warnings (things Orca tolerates, legacy stage types) keep exit 0.

Examples:
  clover-cd pipeline validate pipeline.json
  clover-cd pipeline validate dinghyfile --output json
`,
    )
    .action(
      action(async (file: string, _opts: unknown, c: Command) => {
        const { validatePipelineDocument, formatPipelineProblem } = await validator();
        const doc = readJsonFile(file);
        const v = validatePipelineDocument(doc);
        const where = file === '-' ? 'stdin' : file;
        const { output } = globalOptions(c);
        const summary = `${where}: ${v.kind}, ${v.pipelines.length} pipeline(s): ${v.errors} error(s), ${v.warnings} warning(s)${v.errors ? '' : ' — valid'}`;
        // Findings are diagnostics (stderr); the data is the summary of a valid document, or with -o json|yaml one
        // document holding the findings too (as spec validate).
        v.problems.forEach((p) => note(formatPipelineProblem(p, where)));
        if (output !== 'text') printResult(output, { file: where, valid: v.errors === 0, ...v }, () => '');
        else if (v.errors) note(summary);
        else printResult(output, v, () => summary);
        return v.errors ? ExitCode.invalid : ExitCode.ok;
      }),
    );
}

interface GateFlags {
  gate?: string;
  cert?: string;
  key?: string;
  ca?: string;
  tokenFile?: string;
}

function gateOptions(cmd: Command): Command {
  return cmd
    .option('--gate <url>', 'Spinnaker Gate API URL (default: $SPINNAKER_GATE_URL)')
    .option('--cert <file>', 'client certificate (PEM) for x509 auth (or $SPINNAKER_CLIENT_CERT)')
    .option('--key <file>', 'client key (PEM) for x509 auth (or $SPINNAKER_CLIENT_KEY)')
    .option('--ca <file>', "CA bundle that signed Gate's certificate (or $SPINNAKER_CA_CERT)")
    .option(
      '--token-file <file>',
      'file holding a bearer token (or $SPINNAKER_TOKEN / $SPINNAKER_TOKEN_FILE)',
    );
}

const GATE_AUTH_HELP = `
Auth: bearer token ($SPINNAKER_TOKEN or --token-file), basic ($SPINNAKER_USER + $SPINNAKER_PASSWORD or
$SPINNAKER_PASSWORD_FILE), or a client certificate (--cert/--key). Secrets are never printed.`;

async function gateClient(flags: GateFlags): Promise<GateClient> {
  const { GateClient, gateAuthFrom } = await import('../../services/spinnaker.js');
  const url = flags.gate ?? process.env.SPINNAKER_GATE_URL;
  if (!url)
    throw new InvalidInputError(
      'no Gate URL: pass --gate https://gate.example.com or set SPINNAKER_GATE_URL',
    );
  if (!/^https?:\/\//.test(url)) throw new InvalidInputError(`--gate must be an http(s) URL, got "${url}"`);
  return new GateClient(
    url,
    gateAuthFrom({ certFile: flags.cert, keyFile: flags.key, caFile: flags.ca, tokenFile: flags.tokenFile }),
  );
}

export function registerSave(group: Command): void {
  gateOptions(
    group
      .command('save')
      .description(
        'save pipelines to Spinnaker through Gate (create, or update the pipeline with the same name in place)',
      )
      .argument(
        '<file>',
        'a release spec (rendered first) or pipeline JSON (config, list or Dinghy wrapper)',
      ),
  )
    .addHelpText(
      'after',
      `${GATE_AUTH_HELP}

The file is validated first; with any error nothing is sent (exit 2). Gate's refusal (HTTP 400) is shown.

Examples:
  clover-cd pipeline save examples/sdc-canary.yaml --gate https://gate.example.com
  SPINNAKER_TOKEN=... clover-cd pipeline save pipeline.json --gate https://gate.example.com
`,
    )
    .action(
      action(async (file: string, flags: GateFlags, c: Command) => {
        const { configs } = await pipelinesFrom(file);
        const client = await gateClient(flags);
        const results = [];
        for (const config of configs) {
          results.push(await client.savePipeline(config));
          const r = results[results.length - 1];
          note(`${r.action} pipeline "${r.name}" in ${r.application} (id ${r.id})`);
        }
        printResult(globalOptions(c).output, results, (rs) =>
          table(
            ['APPLICATION', 'NAME', 'ID', 'ACTION'],
            rs.map((r) => [r.application, r.name, r.id, r.action]),
          ),
        );
        return 0;
      }),
    );
}

function parseParams(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) throw new InvalidInputError(`--param expects key=value, got "${v}"`);
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

export function registerExecute(group: Command): void {
  gateOptions(
    group
      .command('execute')
      .description('start a pipeline execution through Gate and print its execution id')
      .argument('<application>', 'Spinnaker application')
      .argument('<name>', 'pipeline name')
      .option(
        '-p, --param <key=value>',
        'pipeline parameter (repeatable)',
        (v: string, acc: string[]) => [...acc, v],
        [] as string[],
      ),
  )
    .addHelpText(
      'after',
      `${GATE_AUTH_HELP}

Examples:
  clover-cd pipeline execute sdc http-lb-canary --gate https://gate.example.com
  id=$(clover-cd pipeline execute sdc http-lb-canary -p tag=opnfv-7.0.0) && clover-cd pipeline status "$id" --wait
`,
    )
    .action(
      action(
        async (application: string, name: string, flags: GateFlags & { param: string[] }, c: Command) => {
          const params = parseParams(flags.param);
          const id = await (await gateClient(flags)).executePipeline(application, name, params);
          printResult(globalOptions(c).output, { id, application, name }, (d) => d.id);
          return 0;
        },
      ),
    );
}

function describeExecution(e: PipelineExecution): string {
  const lines = [`${e.id}: ${e.status}${e.name ? ` (${e.application}/${e.name})` : ''}`];
  const stages = (e.stages ?? []).filter((s) => s.status && s.status !== 'NOT_STARTED');
  if (stages.length)
    lines.push(
      table(
        ['STAGE', 'TYPE', 'STATUS'],
        stages.map((s) => [s.name ?? s.refId ?? '?', s.type ?? '', s.status ?? '']),
      ),
    );
  return lines.join('\n');
}

export function registerStatus(group: Command): void {
  gateOptions(
    group
      .command('status')
      .description('show a pipeline execution; with --wait, poll until it ends')
      .argument('<execution-id>', 'execution id printed by `pipeline execute`')
      .option('--wait', 'poll until the execution is final', false)
      .option('--interval <seconds>', 'poll interval with --wait', '2')
      .option('--timeout <seconds>', 'give up waiting after this long (exit 3)', '7200'),
  )
    .addHelpText(
      'after',
      `${GATE_AUTH_HELP}

Exit codes: 0 SUCCEEDED, 1 TERMINAL / CANCELED / STOPPED, 3 still running (without --wait, or past --timeout),
4 Gate unreachable.

Examples:
  clover-cd pipeline status 01HXYZ... --gate https://gate.example.com
  clover-cd pipeline status 01HXYZ... --wait --output json
`,
    )
    .action(
      action(
        async (
          id: string,
          flags: GateFlags & { wait: boolean; interval: string; timeout: string },
          c: Command,
        ) => {
          const client = await gateClient(flags);
          const interval = Number(flags.interval);
          const timeout = Number(flags.timeout);
          if (!(interval > 0) || !(timeout > 0))
            throw new InvalidInputError('--interval and --timeout must be positive numbers of seconds');
          let last = '';
          const e = flags.wait
            ? await client.waitForExecution(id, {
                intervalMs: interval * 1000,
                timeoutMs: timeout * 1000,
                onPoll: (x) => {
                  const running = (x.stages ?? [])
                    .filter((s) => s.status === 'RUNNING')
                    .map((s) => s.name)
                    .join(', ');
                  const line = `${x.status}${running ? `: ${running}` : ''}`;
                  if (line !== last) note(line);
                  last = line;
                },
              })
            : await client.getExecution(id);
          printResult(globalOptions(c).output, e, describeExecution);
          if (e.status === 'SUCCEEDED' || ['TERMINAL', 'CANCELED', 'STOPPED'].includes(e.status))
            return (await import('../../services/spinnaker.js')).executionExitCode(e.status);
          return ExitCode.inconclusive;
        },
      ),
    );
}

/** The `pipeline` verb group, with its subcommands; returned so more subcommands can be added. */
export function pipelineCommand(program: Command): Command {
  const group = program
    .command('pipeline')
    .description(
      'Spinnaker pipelines: render from a release spec, validate, save through Gate, execute, follow',
    )
    .addHelpText(
      'after',
      `
Examples:
  clover-cd pipeline render examples/sdc-canary.yaml -o pipeline.json
  clover-cd pipeline validate pipeline.json
  clover-cd pipeline save pipeline.json --gate https://gate.example.com
  clover-cd pipeline execute sdc http-lb-canary && clover-cd pipeline status <id> --wait
  clover-cd pipeline orca-config release.yaml > orca-local.yml   # preconfigured stages for Deck's picker
`,
    );
  for (const registerSub of [
    registerRender,
    registerValidate,
    registerSave,
    registerExecute,
    registerStatus,
    registerRun,
    registerOrcaConfig,
  ])
    registerSub(group);
  return group;
}

export function register(program: Command): void {
  pipelineCommand(program);
}
