// clover-cd Jenkins shared library: a service repository's Jenkinsfile calls
//   cloverCd.release(spec: 'release.yaml')           the whole release from this job (judgments become `input`)
//   cloverCd.stage(action: 'gate', spec: '...')     one action, as Spinnaker's jenkins stage schedules it
// Both install the published clover-cd package unless `clover-cd` is on PATH (e.g. the clover-cd image as agent),
// map the exit code to the build result, publish JUnit and the gate report, and archive the evidence.
// Help: vars/cloverCd.txt; setup and job template: vars/README.md.
import groovy.transform.Field

// clover-cd exit codes (src/contract, README "Exit codes") → build result and what to tell the person reading it.
@Field static final Map RESULTS = [0: 'SUCCESS', 1: 'FAILURE', 2: 'FAILURE', 3: 'UNSTABLE', 4: 'FAILURE', 130: 'ABORTED']
@Field static final Map MEANINGS = [
  0  : 'passed',
  1  : 'gate failed: the evidence says the release is bad; it was rolled back (see the gate report)',
  2  : 'invalid input: nothing was changed (the message names the file and field)',
  3  : 'inconclusive: not enough evidence to decide; nothing was promoted',
  4  : 'infrastructure error: a dependency was unreachable or refused',
  130: 'interrupted: traffic was left in the last safe state',
]
@Field static final String DEFAULT_VERSION = '0.1.0'
@Field static final String PROPERTIES = 'clover-cd.properties'
// `release run --properties` writes these when it stops at a judgment (exit 3): waiting, not inconclusive.
@Field static final String PHASE_PROPERTY = 'CLOVER_CD_PHASE'
@Field static final String STEP_PROPERTY = 'CLOVER_CD_STEP'
@Field static final String AWAITING_JUDGMENT = 'awaitingJudgment'

/** The build result for a clover-cd exit code (unknown codes are failures). */
String resultFor(int code) {
  return RESULTS.containsKey(code) ? RESULTS[code] : 'FAILURE'
}

/** The clover-cd command: args.cli, else the one on PATH, else the published package installed into the workspace. */
String install(Map args = [:]) {
  if (args.cli) return args.cli
  if (sh(returnStatus: true, script: 'command -v clover-cd >/dev/null 2>&1') == 0) return 'clover-cd'
  String version = args.version ?: (env.CLOVER_CD_VERSION ?: DEFAULT_VERSION)
  String prefix = "${env.WORKSPACE ?: '.'}/.clover-cd/npm"
  sh "npm install --global --prefix '${prefix}' --no-audit --no-fund --loglevel=error 'clover-cd@${version}'"
  return "'${prefix}/bin/clover-cd'"
}

/** key=value lines of a properties file clover-cd wrote (empty map when there is none). */
Map readProperties(String file) {
  Map out = [:]
  if (!fileExists(file)) return out
  for (String line : readFile(file).readLines()) {
    String l = line.trim()
    if (!l || l.startsWith('#')) continue
    int i = l.indexOf('=')
    if (i > 0) out[l.substring(0, i)] = l.substring(i + 1).replace('\\:', ':').replace('\\=', '=').replace('\\\\', '\\')
  }
  return out
}

/** Run clover-cd with output teed to clover-cd.log; returns the exit code of clover-cd itself. */
int run(String cli, String arguments) {
  return sh(returnStatus: true, script: "#!/bin/bash\nset -o pipefail\n${cli} ${arguments} 2>&1 | tee -a clover-cd.log")
}

/**
 * The whole release (`clover-cd release run`). Options: spec (required), platform (kubernetes), context,
 * autoApprove (false: every judgment becomes an `input` step), approvers (input submitter), evidenceDir,
 * reportDir, version / cli, propagate (true: a failed release fails the build with error()).
 */
int release(Map args = [:]) {
  if (!args.spec) error('cloverCd.release: give spec, e.g. cloverCd.release(spec: \'release.yaml\')')
  String cli = install(args)
  String evidence = args.evidenceDir ?: 'evidence'
  String flags = "'${args.spec}' --platform '${args.platform ?: 'kubernetes'}' --evidence-dir '${evidence}' --properties '${PROPERTIES}'"
  if (args.context) flags += " --context '${args.context}'"
  if (args.autoApprove) flags += ' --auto-approve'
  String approve = ''
  int code
  while (true) {
    code = run(cli, "release run ${flags}${approve}")
    Map props = readProperties(PROPERTIES)
    if (code != 3 || props[PHASE_PROPERTY] != AWAITING_JUDGMENT) break
    // Waiting for approval (not inconclusive): a person decides; the release state waits with the routes.
    String step = props[STEP_PROPERTY]
    String decision
    try {
      decision = input(message: "clover-cd: step ${step} of ${args.spec} passed its gate. Continue the release?", ok: 'Decide',
        submitter: args.approvers,
        parameters: [choice(name: 'DECISION', choices: ['continue', 'rollback'], description: 'continue: go on to the next step; rollback: all traffic back to stable')])
    } catch (err) {
      // Aborted at the input (or timed out): roll back, then let the abort through.
      run(cli, "release abort '${args.spec}' --platform '${args.platform ?: 'kubernetes'}'")
      publish(cli, evidence, args)
      throw err
    }
    if (decision == 'rollback') {
      run(cli, "release abort '${args.spec}' --platform '${args.platform ?: 'kubernetes'}'")
      publish(cli, evidence, args)
      return finish(1, 'release', args, "rejected at the judgment after step ${step}: all traffic rolled back to stable")
    }
    approve = " --approve ${step}"
  }
  publish(cli, evidence, args)
  return finish(code, 'release', args)
}

/**
 * One release action (`clover-cd stage <action>`), as Spinnaker's jenkins stage schedules it. Options: action
 * (required), spec (a file) or specBase64 (the SPEC parameter), step, weight, window, executionId, pipeline,
 * platform, context, evidenceDir, reportDir, version / cli, propagate. Archives clover-cd.properties, which the
 * Spinnaker stage reads (propertyFile) into its outputs.
 */
int stage(Map args = [:]) {
  if (!args.action) error('cloverCd.stage: give action (deploy|traffic|load|gate|promote|rollback)')
  if (!args.spec && !args.specBase64) error('cloverCd.stage: give spec (a file) or specBase64 (the SPEC parameter of the Spinnaker stage)')
  String cli = install(args)
  String evidence = args.evidenceDir ?: 'evidence'
  String a = "stage '${args.action}' --platform '${args.platform ?: 'kubernetes'}' --evidence-dir '${evidence}' --properties '${PROPERTIES}'"
  a += args.spec ? " --spec '${args.spec}'" : ' --spec-env CLOVER_CD_SPEC'
  if (args.step) a += " --step '${args.step}'"
  if (args.weight) a += " --weight '${args.weight}'"
  if (args.window) a += " --window '${args.window}'"
  if (args.context) a += " --context '${args.context}'"
  List environment = ["CLOVER_CD_SPEC=${args.specBase64 ?: ''}", "CLOVER_CD_EXECUTION_ID=${args.executionId ?: ''}", "CLOVER_CD_PIPELINE=${args.pipeline ?: ''}"]
  int code = 0
  withEnv(environment) {
    code = run(cli, a)
  }
  archiveArtifacts(artifacts: PROPERTIES, allowEmptyArchive: true)
  publish(cli, evidence, args)
  return finish(code, "stage ${args.action}", args)
}

/** JUnit (one testcase per gate rule) and the gate report from every evidence bundle; the evidence archived. */
void publish(String cli, String evidence, Map args) {
  String reports = args.reportDir ?: 'reports'
  sh(returnStatus: true, script: """mkdir -p '${reports}'
for b in '${evidence}'/*.json; do
  [ -e "\$b" ] || continue
  n=\$(basename "\$b" .json)
  ${cli} gate --replay "\$b" --junit '${reports}'/"\$n".xml --markdown '${reports}'/"\$n".md > /dev/null || true
done""")
  junit(allowEmptyResults: true, testResults: "${reports}/*.xml")
  writeFile(file: "${reports}/index.html", text: reportHtml(reports))
  try {
    publishHTML([reportDir: reports, reportFiles: 'index.html', reportName: 'clover-cd gate', keepAll: true, alwaysLinkToLastBuild: true, allowMissing: true])
  } catch (NoSuchMethodError e) {
    archiveArtifacts(artifacts: "${reports}/index.html", allowEmptyArchive: true) // no HTML Publisher plugin
  } catch (MissingMethodException e) {
    archiveArtifacts(artifacts: "${reports}/index.html", allowEmptyArchive: true)
  }
  archiveArtifacts(artifacts: "${evidence}/**, ${reports}/**, ${PROPERTIES}, clover-cd.log", allowEmptyArchive: true)
}

/** One page with every gate's Markdown report (escaped, preformatted). */
String reportHtml(String reports) {
  String listing = sh(returnStdout: true, script: "ls '${reports}'/*.md 2>/dev/null || true").trim()
  StringBuilder body = new StringBuilder()
  for (String f : (listing ? listing.split('\n') : [])) {
    String text = readFile(f).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
    body.append("<section><h2>${f}</h2><pre>${text}</pre></section>\n")
  }
  if (!body.length()) body.append('<p>No gate ran in this build.</p>')
  return "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>clover-cd gate</title></head><body><h1>clover-cd gate</h1>\n${body}</body></html>\n"
}

/** The build result for the exit code; error() for FAILURE / ABORTED unless propagate is false. */
int finish(int code, String what, Map args, String detail = null) {
  String result = resultFor(code)
  String message = "clover-cd ${what}: exit ${code}, ${detail ?: (MEANINGS[code] ?: 'unknown exit code')}"
  if (result == 'SUCCESS') {
    echo message
  } else if (result == 'UNSTABLE') {
    unstable(message)
  } else {
    currentBuild.result = result
    if (args.propagate != false) error(message)
    echo message
  }
  return code
}

return this
