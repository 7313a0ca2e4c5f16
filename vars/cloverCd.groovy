// clover-cd Jenkins shared library: a service repository's Jenkinsfile calls
//   cloverCd.release(spec: 'release.yaml')           the whole release; each judgment an `input`, outside any agent
//   cloverCd.stage(action: 'gate', spec: '...')     one action, as Spinnaker's jenkins stage schedules it
// clover-cd comes from the agent's PATH unless the caller names another source (install:, image:, cli:); every
// value reaches it as one word quoted by shellQuote, so a parameter can never run shell. Exit codes become build
// results; JUnit and the gate report are published and the evidence archived. Help: cloverCd.txt, README.md.
import groovy.transform.Field

// clover-cd exit codes (src/contract, README "Exit codes") → build result and what to tell the person reading it.
@Field static final Map RESULTS = [0: 'SUCCESS', 1: 'FAILURE', 2: 'FAILURE', 3: 'UNSTABLE', 4: 'FAILURE', 130: 'ABORTED']
@Field static final Map MEANINGS = [
  0  : 'passed',
  1  : 'gate failed: the evidence says the release is bad; it was rolled back (see the gate report)',
  2  : 'invalid input: the message names the file and field',
  3  : 'inconclusive: not enough evidence to decide; nothing was promoted',
  4  : 'infrastructure error: a dependency was unreachable or refused',
  130: 'interrupted: traffic was left in the last safe state',
]
@Field static final String PROPERTIES = 'clover-cd.properties'
@Field static final String LOG = 'clover-cd.log'
// `release run --properties` writes these when it stops at a judgment (exit 3): waiting, not inconclusive.
@Field static final String PHASE_PROPERTY = 'CLOVER_CD_PHASE'
@Field static final String STEP_PROPERTY = 'CLOVER_CD_STEP'
@Field static final String AWAITING_JUDGMENT = 'awaitingJudgment'
// The options each call accepts: a misspelt or retired one is refused before anything runs.
@Field static final List COMMON_OPTIONS = ['spec', 'platform', 'context', 'evidenceDir', 'reportDir', 'propagate', 'agent', 'checkout',
  'unstash', 'cli', 'install', 'registry', 'image', 'docker', 'dockerArgs']
@Field static final List RELEASE_OPTIONS = ['autoApprove', 'approvers']
@Field static final List STAGE_OPTIONS = ['action', 'specBase64', 'step', 'weight', 'window', 'executionId', 'pipeline']
// What the image runner hands to the container: `docker run --env NAME` copies the agent's value, when it has one.
@Field static final List CONTAINER_ENV = ['CLOVER_CD_SPEC', 'CLOVER_CD_EXECUTION_ID', 'CLOVER_CD_PIPELINE', 'CLOVER_CD_REDIS_URL',
  'SPINNAKER_GATE_URL', 'BUILD_URL', 'GIT_COMMIT', 'KUBECONFIG']

/** The build result for a clover-cd exit code (unknown codes are failures). */
String resultFor(int code) {
  return RESULTS.containsKey(code) ? RESULTS[code] : 'FAILURE'
}

/** One shell word: the value in single quotes, each ' in it written '\'' — the shell expands nothing inside. */
String shellQuote(Object value) {
  return "'" + value.toString().replace("'", "'\\''") + "'"
}

/** The words as one `sh` command line, each quoted by shellQuote. */
String commandLine(List words) {
  List quoted = []
  for (Object word : words) quoted.add(shellQuote(word))
  return quoted.join(' ')
}

/** Refuses options the call does not know (a typo would otherwise be ignored silently). */
void checkOptions(String call, Map args, List known) {
  for (Object key : args.keySet()) {
    if (known.contains(key)) continue
    if (key == 'version') error("cloverCd.${call}: version: is no longer read (it installed a package that is not published); " +
      "name where clover-cd comes from: install: 'npm:<package spec or tarball URL>' (registry: for your own), image: 'ghcr.io/clover-cd/clover-cd:0.1.0', or cli:")
    error("cloverCd.${call}: unknown option ${key}: one of ${known.join(', ')}")
  }
  List sources = []
  for (String source : ['cli', 'install', 'image']) if (args[source]) sources.add(source)
  if (sources.size() > 1) error("cloverCd.${call}: ${sources.join(' and ')} both say where clover-cd comes from: give one of cli:, install:, image:")
  if (args.install && !args.install.toString().startsWith('npm:')) {
    error("cloverCd.${call}: install: '${args.install}' names no known source: write install: 'npm:<package spec or tarball URL>'")
  }
  if (args.registry && !args.install) error("cloverCd.${call}: registry: is the npm registry of install:; give install: 'npm:clover-cd@<version>' with it")
}

/**
 * The words that start clover-cd on this agent: cli (a command, split at spaces), the image run in exec form
 * (`docker run … <image> <arguments>`: its entrypoint is clover-cd, no shell needed in it), the package npm
 * installs from the named source into the workspace, or `clover-cd` on PATH (the default).
 */
List runner(Map args) {
  if (args.cli instanceof List) return args.cli
  if (args.cli) return words(args.cli.toString())
  if (args.image) return containerWords(args)
  if (args.install) {
    String prefix = "${env.WORKSPACE}/.clover-cd/npm"
    List npm = ['npm', 'install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error']
    if (args.registry) npm += ['--registry', args.registry]
    sh(commandLine(npm + [args.install.toString().substring(4)]))
    return ["${prefix}/bin/clover-cd"]
  }
  if (sh(returnStatus: true, script: 'command -v clover-cd >/dev/null 2>&1') == 0) return ['clover-cd']
  error("cloverCd: clover-cd is not on the PATH of agent ${env.NODE_NAME}: run on an agent that has it, or name a source: " +
    "image: 'ghcr.io/clover-cd/clover-cd:0.1.0' (Docker on the agent), install: 'npm:<package spec or tarball URL>', or cli:")
}

/** The space-separated words of a command the Jenkinsfile wrote (cli: 'node bin/clover-cd.js'). */
List words(String command) {
  List out = []
  for (String word : command.split(' ')) if (word) out.add(word)
  return out
}

/** `docker run` of the image with the workspace mounted at its own path, as the agent's user. */
List containerWords(Map args) {
  String ws = env.WORKSPACE
  List ids = sh(returnStdout: true, script: 'id -u; id -g').readLines()
  List command = [args.docker ?: 'docker', 'run', '--rm', '--user', "${ids[0]}:${ids[1]}", '--workdir', ws, '--volume', "${ws}:${ws}"]
  for (String name : CONTAINER_ENV) command += ['--env', name]
  // The image's own state folder belongs to its user, not to the agent's: keep the state in the workspace.
  String state = env.CLOVER_CD_STATE_DIR ?: "${ws}/.clover-cd"
  command += ['--env', "CLOVER_CD_STATE_DIR=${state}"]
  if (env.KUBECONFIG) command += ['--volume', "${env.KUBECONFIG}:${env.KUBECONFIG}:ro"]
  return command + (args.dockerArgs ?: []) + [args.image]
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

/** clover-cd with these arguments, its output teed to clover-cd.log; returns clover-cd's own exit code. */
int run(Map session, List arguments) {
  String script = "#!/bin/bash\nset -o pipefail\n${commandLine(session.cli + arguments)} 2>&1 | tee -a ${shellQuote(LOG)}"
  return sh(returnStatus: true, script: script)
}

/**
 * body(session) on an agent: the caller's when already inside `node`, else one `node` of its own (label
 * args.agent) holding nothing once body returns, with the repository checked out (checkout: false to skip;
 * unstash: a stash name instead). session.cli runs clover-cd there; what was published is remembered in
 * `published` across agents.
 */
Object onAgent(Map args, List published, Closure body) {
  if (env.NODE_NAME) return body(session(args, published))
  Object result = null
  node(args.agent ?: '') {
    if (args.unstash) unstash(args.unstash)
    else if (args.checkout != false) checkout(scm)
    result = body(session(args, published))
  }
  return result
}

/** clover-cd on this agent, and the evidence bundles already here (a reused workspace keeps older builds'). */
Map session(Map args, List published) {
  return [cli: runner(args), args: args, published: published, before: bundles(args.evidenceDir ?: 'evidence')]
}

/** The evidence bundles in the folder, one path a line. */
List bundles(String evidence) {
  return sh(returnStdout: true, script: "for b in ${shellQuote(evidence)}/*.json; do [ -e \"\$b\" ] && printf '%s\\n' \"\$b\"; done; true").readLines()
}

/**
 * The whole release (`clover-cd release run`). Options: spec (required), platform (kubernetes), context,
 * autoApprove (false: every judgment becomes an `input` step, which must run outside any agent), approvers
 * (input submitter), agent (label), evidenceDir, reportDir, cli / install / image, propagate.
 */
int release(Map args = [:]) {
  checkOptions('release', args, COMMON_OPTIONS + RELEASE_OPTIONS)
  if (!args.spec) error('cloverCd.release: give spec, e.g. cloverCd.release(spec: \'release.yaml\')')
  if (!args.autoApprove && env.NODE_NAME) {
    error("cloverCd.release: called inside node/agent ${env.NODE_NAME}; a judgment waits at `input`, which would hold that executor " +
      "for the whole approval. Call it outside any agent (`agent none`, agent: '<label>' for clover-cd's own runs), or pass autoApprove: true")
  }
  String platform = args.platform ?: 'kubernetes'
  List flags = [args.spec, '--platform', platform, '--evidence-dir', args.evidenceDir ?: 'evidence', '--properties', PROPERTIES]
  if (args.context) flags += ['--context', args.context]
  if (args.autoApprove) flags += ['--auto-approve']
  List published = []
  List approve = []
  Map outcome
  while (true) {
    outcome = onAgent(args, published) { Map session ->
      int code = run(session, ['release', 'run'] + flags + approve)
      Map props = readProperties(PROPERTIES)
      publish(session)
      return [code: code, props: props]
    }
    if (outcome.code != 3 || outcome.props[PHASE_PROPERTY] != AWAITING_JUDGMENT) break
    // Waiting for approval (not inconclusive): a person decides, no executor is held; the routes keep the state.
    String step = outcome.props[STEP_PROPERTY]
    String decision
    try {
      decision = input(message: "clover-cd: step ${step} of ${args.spec} passed its gate. Continue the release?", ok: 'Decide',
        submitter: args.approvers,
        parameters: [choice(name: 'DECISION', choices: ['continue', 'rollback'], description: 'continue: go on to the next step; rollback: all traffic back to stable')])
    } catch (err) {
      // Aborted at the input (or timed out): roll back, then let the abort through.
      abortRelease(args, published, platform)
      throw err
    }
    if (decision == 'rollback') {
      abortRelease(args, published, platform)
      return finish(1, 'release', args, "rejected at the judgment after step ${step}: all traffic rolled back to stable")
    }
    approve = ['--approve', step]
  }
  return finish(outcome.code, 'release', args)
}

/** `clover-cd release abort` (all traffic back to stable) on an agent, then publish. */
void abortRelease(Map args, List published, String platform) {
  List flags = ['release', 'abort', args.spec, '--platform', platform]
  if (args.context) flags += ['--context', args.context]
  onAgent(args, published) { Map session ->
    run(session, flags)
    publish(session)
  }
}

/**
 * One release action (`clover-cd stage <action>`), as Spinnaker's jenkins stage schedules it. Options: action
 * (required), spec (a file) or specBase64 (the SPEC parameter), step, weight, window, executionId, pipeline,
 * platform, context, agent, evidenceDir, reportDir, cli / install / image, propagate. Archives
 * clover-cd.properties, which the Spinnaker stage reads (propertyFile) into its outputs.
 */
int stage(Map args = [:]) {
  checkOptions('stage', args, COMMON_OPTIONS + STAGE_OPTIONS)
  if (!args.action) error('cloverCd.stage: give action (deploy|traffic|load|gate|promote|rollback)')
  if (!args.spec && !args.specBase64) error('cloverCd.stage: give spec (a file) or specBase64 (the SPEC parameter of the Spinnaker stage)')
  List flags = ['stage', args.action, '--platform', args.platform ?: 'kubernetes', '--evidence-dir', args.evidenceDir ?: 'evidence',
    '--properties', PROPERTIES]
  flags += args.spec ? ['--spec', args.spec] : ['--spec-env', 'CLOVER_CD_SPEC']
  if (args.step) flags += ['--step', args.step]
  if (args.weight) flags += ['--weight', args.weight]
  if (args.window) flags += ['--window', args.window]
  if (args.context) flags += ['--context', args.context]
  // The spec and the execution travel in the environment: never through a command line or a log.
  List environment = ["CLOVER_CD_SPEC=${args.specBase64 ?: ''}", "CLOVER_CD_EXECUTION_ID=${args.executionId ?: ''}",
    "CLOVER_CD_PIPELINE=${args.pipeline ?: ''}"]
  int code = onAgent(args, []) { Map session ->
    int status = 0
    withEnv(environment) {
      status = run(session, flags)
    }
    archiveArtifacts(artifacts: PROPERTIES, allowEmptyArchive: true)
    publish(session)
    return status
  }
  return finish(code, "stage ${args.action}", args)
}

/**
 * JUnit (one testcase per gate rule) and the gate report of every evidence bundle this agent has that was not
 * published yet; the HTML page carries every report of the build; the evidence archived.
 */
void publish(Map session) {
  String evidence = session.args.evidenceDir ?: 'evidence'
  String reports = session.args.reportDir ?: 'reports'
  List fresh = []
  for (String bundle : bundles(evidence)) if (!session.before.contains(bundle)) fresh.add(bundle)
  sh(commandLine(['mkdir', '-p', reports]))
  List junitFiles = []
  for (String bundle : fresh) {
    String name = bundle.substring(bundle.lastIndexOf('/') + 1).replace('.json', '')
    sh(returnStatus: true, script: "${commandLine(session.cli + ['gate', '--replay', bundle, '--junit', "${reports}/${name}.xml", '--markdown', "${reports}/${name}.md"])} > /dev/null 2>&1")
    junitFiles.add("${reports}/${name}.xml")
    if (fileExists("${reports}/${name}.md")) session.published.add([name: "${reports}/${name}.md", text: readFile("${reports}/${name}.md")])
  }
  if (junitFiles) junit(allowEmptyResults: true, testResults: junitFiles.join(','))
  writeFile(file: "${reports}/index.html", text: reportHtml(session.published))
  try {
    publishHTML([reportDir: reports, reportFiles: 'index.html', reportName: 'clover-cd gate', keepAll: true, alwaysLinkToLastBuild: true, allowMissing: true])
  } catch (NoSuchMethodError e) {
    archiveArtifacts(artifacts: "${reports}/index.html", allowEmptyArchive: true) // no HTML Publisher plugin
  } catch (MissingMethodException e) {
    archiveArtifacts(artifacts: "${reports}/index.html", allowEmptyArchive: true)
  }
  archiveArtifacts(artifacts: "${evidence}/**, ${reports}/**, ${PROPERTIES}, ${LOG}", allowEmptyArchive: true)
}

/** One page with every gate's Markdown report (escaped, preformatted). */
String reportHtml(List reports) {
  StringBuilder body = new StringBuilder()
  for (Map report : reports) {
    body.append("<section><h2>${escapeHtml(report.name)}</h2><pre>${escapeHtml(report.text)}</pre></section>\n")
  }
  if (!body.length()) body.append('<p>No gate ran in this build.</p>')
  return "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>clover-cd gate</title></head><body><h1>clover-cd gate</h1>\n${body}</body></html>\n"
}

String escapeHtml(String text) {
  return text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace('"', '&quot;')
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
