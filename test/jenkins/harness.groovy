// Runs vars/cloverCd.groovy the way a Jenkins controller would, every case in this one JVM, and prints one JSON
// object per case: build result, error, the steps called in order, and what the stand-in clover-cd recorded.
//   groovy -cp test/jenkins test/jenkins/harness.groovy <vars/cloverCd.groovy> <work dir> <hostile-values.json>
// Modelled from the real plugins (test/conformance/jenkins/pipeline-steps.json): `sh` writes its script to a file
// and runs it as durable-task does (#! → executed as it is, else `sh -xe`), for real, with the withEnv environment
// and a stand-in clover-cd / docker / npm (test/jenkins/fake/) first on PATH; a step that needs a workspace
// fails outside `node`; `node` sets NODE_NAME and WORKSPACE; `input` inside `node` fails the case (it would hold
// the executor for the whole approval). The library's own calls go through the sandbox model (SandboxModel.groovy).
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import java.util.concurrent.TimeUnit
import org.codehaus.groovy.control.CompilerConfiguration

class StepError extends RuntimeException { StepError(String m) { super(m) } }

/** The Jenkins side: every step a library call makes is recorded; sh really runs. */
abstract class JenkinsStub extends Script {
  static Map stepFacts
  List calls = []
  Map env = [:]
  Map currentBuild = [result: null]
  Map scm = ['$class': 'GitSCM', branches: [[name: 'main']]]
  String inputAnswer = 'continue'
  boolean htmlPublisher = true
  List envStack = []
  int nodeDepth = 0
  File caseDir
  Map processEnv = [:]
  StringBuilder log = new StringBuilder()
  int scripts = 0

  File workspace() { return new File(caseDir, 'ws') }
  void requireContext(String step) {
    List requires = stepFacts[step]?.requires
    if (requires == null) throw new IllegalStateException("no facts for step ${step} in pipeline-steps.json")
    if (requires.contains('FilePath') && nodeDepth == 0) {
      throw new StepError("Required context class hudson.FilePath is missing\nPerhaps you forgot to surround the ${step} step with a step that provides this, such as: node")
    }
  }

  def sh(String script) { return sh([script: script]) }
  def sh(Map m) {
    requireContext('sh')
    String script = m.script
    calls << [step: 'sh', script: script]
    File file = new File(caseDir, "tmp/script-${++scripts}.sh")
    file.text = script
    List command = script.startsWith('#!') ? [file.path] : ['sh', '-xe', file.path]
    file.setExecutable(script.startsWith('#!'))
    ProcessBuilder builder = new ProcessBuilder(command as String[]).directory(workspace())
    builder.environment().clear()
    builder.environment().putAll(processEnv + env + envStack.flatten().collectEntries { String kv -> int i = kv.indexOf('='); [(kv.substring(0, i)): kv.substring(i + 1)] })
    Process p = builder.start()
    def out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream()
    Thread t1 = p.consumeProcessOutputStream(m.returnStdout ? out : err), t2 = p.consumeProcessErrorStream(err)
    if (!p.waitFor(60, TimeUnit.SECONDS)) { p.destroyForcibly(); throw new StepError("sh did not end within 60 s: ${script}") }
    t1.join(5000); t2.join(5000)
    log.append(err.toString('UTF-8'))
    int code = p.exitValue()
    if (m.returnStdout) return out.toString('UTF-8')
    if (m.returnStatus) return code
    if (code != 0) throw new StepError("script returned exit code ${code}")
    return null
  }
  def node(String label, Closure body) {
    requireContext('node')
    calls << [step: 'node', label: label]
    Map saved = new LinkedHashMap(env)
    nodeDepth++
    env.putAll(NODE_NAME: 'agent-1', EXECUTOR_NUMBER: '0', NODE_LABELS: 'agent-1 linux', WORKSPACE: workspace().path)
    try { return body.call() } finally { nodeDepth--; env.clear(); env.putAll(saved); calls << [step: 'end node'] }
  }
  def input(Map m) {
    requireContext('input')
    calls << [step: 'input', message: m.message, submitter: m.submitter, choices: m.parameters*.choices]
    if (nodeDepth > 0) throw new StepError("input inside node ${env.NODE_NAME}: the executor would be held for the whole approval")
    if (inputAnswer == 'ABORT') throw new StepError('Aborted by user')
    return inputAnswer
  }
  def echo(String m) { requireContext('echo'); calls << [step: 'echo', message: m] }
  def error(String m) { requireContext('error'); calls << [step: 'error', message: m]; throw new StepError(m) }
  def unstable(String m) { requireContext('unstable'); calls << [step: 'unstable', message: m]; if (currentBuild.result != 'FAILURE') currentBuild.result = 'UNSTABLE' }
  def junit(Map m) { requireContext('junit'); calls << [step: 'junit', testResults: m.testResults, allowEmptyResults: m.allowEmptyResults] }
  def archiveArtifacts(Map m) { requireContext('archiveArtifacts'); calls << [step: 'archiveArtifacts', artifacts: m.artifacts] }
  def checkout(Map scm) { requireContext('checkout'); calls << [step: 'checkout', scm: scm['$class']] }
  def unstash(String name) { requireContext('unstash'); calls << [step: 'unstash', name: name] }
  def choice(Map m) { return [type: 'choice'] + m }
  def withEnv(List vars, Closure body) {
    requireContext('withEnv')
    calls << [step: 'withEnv', vars: vars]
    envStack << vars
    try { return body.call() } finally { envStack.remove(envStack.size() - 1) }
  }
  def fileExists(String f) { requireContext('fileExists'); return new File(workspace(), f).exists() }
  def readFile(String f) { requireContext('readFile'); return new File(workspace(), f).getText('UTF-8') }
  def writeFile(Map m) { requireContext('writeFile'); new File(workspace(), m.file).text = m.text; calls << [step: 'writeFile', file: m.file, text: m.text] }
  def methodMissing(String name, Object args) {
    if (name == 'publishHTML' && htmlPublisher) { requireContext('publishHTML'); calls << [step: 'publishHTML', target: args[0]]; return null }
    throw new MissingMethodException(name, getClass(), args as Object[])
  }
}

libraryFile = new File(args[0])
work = new File(args[1])
Map hostile = new JsonSlurper().parse(new File(args[2]))
here = new File(getClass().protectionDomain.codeSource.location.path).parentFile
File conformance = new File(here, '../conformance/jenkins')
JenkinsStub.stepFacts = new JsonSlurper().parse(new File(conformance, 'pipeline-steps.json')).steps
SandboxModel.load(new File(conformance, 'sandbox-whitelist.txt'))
def config = new CompilerConfiguration()
config.scriptBaseClass = JenkinsStub.name
config.addCompilationCustomizers(SandboxModel.customizer())
shell = new GroovyShell(this.class.classLoader, new Binding(), config)
fakeCli = new File(here, 'fake/cli/clover-cd').canonicalPath
image = 'ghcr.io/clover-cd/clover-cd:0.1.0'

/** NUL-separated words of a file the stand-ins wrote. */
List words(File f) { return f.exists() ? f.getText('UTF-8').split('\u0000', -1).toList().dropRight(1) : null }

/**
 * A fresh library instance in a fresh workspace. opts: codes (exit codes of successive clover-cd runs), props (what
 * each writes as clover-cd.properties), evidence (each run writes a bundle), onPath (clover-cd on PATH), answer
 * (input), html (HTML Publisher installed), env (the build's environment, e.g. KUBECONFIG), inNode (call inside node).
 */
def runCase(String name, Map opts, Closure call) {
  def lib = shell.parse(libraryFile)
  File dir = new File(work, name.replaceAll('[^A-Za-z0-9]+', '-'))
  File fake = new File(dir, 'fake')
  [new File(dir, 'ws'), new File(dir, 'tmp'), new File(dir, 'home'), fake].each { it.mkdirs() }
  new File(fake, 'codes').text = (opts.codes ?: [0]).join('\n') + '\n'
  (opts.props ?: []).eachWithIndex { p, i -> if (p) new File(fake, "props-${i + 1}").setText(p, 'UTF-8') }
  if (opts.evidence) new File(fake, 'evidence').text = ''
  if (opts.staleBundle) { new File(dir, 'ws/evidence').mkdirs(); new File(dir, 'ws/evidence/older-build.json').text = '{}' }
  String path = (opts.onPath == false ? '' : new File(here, 'fake/cli').canonicalPath + ':') + new File(here, 'fake/tools').canonicalPath + ':/usr/bin:/bin'
  lib.setCaseDir(dir)
  lib.setProcessEnv([PATH: path, HOME: new File(dir, 'home').path, LANG: 'C.UTF-8', CLOVER_CD_FAKE_DIR: fake.path, CLOVER_CD_FAKE_CLI: fakeCli, CLOVER_CD_FAKE_IMAGE: image])
  lib.env.putAll(opts.env ?: [:])
  lib.setInputAnswer(opts.answer ?: 'continue')
  lib.setHtmlPublisher(opts.html != false)
  def out = [name: name]
  try {
    out.returned = opts.inNode ? lib.node('') { call(lib) } : call(lib)
  } catch (Throwable e) {
    out.error = e.message
    if (!(e instanceof StepError) && !(e instanceof SecurityException)) out.stack = e.stackTrace.findAll { it.fileName?.endsWith('.groovy') }.take(6)*.toString()
  }
  out.result = lib.currentBuild.result ?: 'SUCCESS'
  out.calls = lib.calls
  int n = new File(fake, 'count').exists() ? new File(fake, 'count').text.trim() as int : 0
  out.runs = (1..<(n + 1)).collect { i ->
    Map meta = words(new File(fake, "call-${i}.env")).collectEntries { String kv -> int j = kv.indexOf('='); [(kv.substring(0, j)): kv.substring(j + 1)] }
    [argv: words(new File(fake, "call-${i}.argv")), env: meta]
  }
  out.docker = fake.listFiles().findAll { it.name.startsWith('docker-') }.sort { it.name }.collect { words(it) }
  out.npm = fake.listFiles().findAll { it.name.startsWith('npm-') }.sort { it.name }.collect { words(it) }
  out.log = lib.log.toString().take(4000)
  println JsonOutput.toJson(out)
}

String waiting = '# clover-cd stage result\nCLOVER_CD_EXIT_CODE=3\nCLOVER_CD_PHASE=awaitingJudgment\nCLOVER_CD_STEP=1\n'
String inconclusive = '# clover-cd stage result\nCLOVER_CD_EXIT_CODE=3\nCLOVER_CD_PHASE=rolledBack\nCLOVER_CD_STEP=2\n'
List h = hostile.values

for (int code : [0, 1, 2, 3, 4, 130]) {
  runCase("release exit ${code}", [codes: [code], props: [code == 3 ? inconclusive : null], evidence: true]) { it.release(spec: 'release.yaml') }
}
runCase('release waits for approval, continue', [codes: [3, 0], props: [waiting, null], evidence: true]) { it.release(spec: 'release.yaml', approvers: 'release-managers', agent: 'linux') }
runCase('release waits for approval, rollback', [codes: [3, 0], props: [waiting, null], answer: 'rollback']) { it.release(spec: 'release.yaml') }
runCase('release waits for approval, aborted', [codes: [3, 0], props: [waiting, null], answer: 'ABORT']) { it.release(spec: 'release.yaml', unstash: 'sources') }
runCase('release with judgments inside node', [codes: [3, 0], props: [waiting, null], inNode: true]) { it.release(spec: 'release.yaml') }
runCase('release auto-approved inside node, no HTML Publisher', [codes: [0], html: false, evidence: true, inNode: true, staleBundle: true]) {
  it.release(spec: 'release.yaml', autoApprove: true, platform: 'sandbox', cli: "/usr/bin/env  ${fakeCli}")
}
runCase('release not on PATH', [codes: [0], onPath: false]) { it.release(spec: 'release.yaml') }
runCase('release installs from the named source', [codes: [0], onPath: false]) {
  it.release(spec: 'release.yaml', install: 'npm:https://npm.example.internal/clover-cd/-/clover-cd-0.1.0.tgz', registry: 'https://npm.example.internal/')
}
runCase('release with a retired option', [:]) { it.release(spec: 'release.yaml', version: '0.1.0') }
runCase('release with two sources', [:]) { it.release(spec: 'release.yaml', cli: 'clover-cd', image: image) }
runCase('release with an unknown source', [:]) { it.release(spec: 'release.yaml', install: 'https://example.com/clover-cd.tgz') }
runCase('release without spec', [:]) { it.release() }
runCase('stage gate exit 4', [codes: [4], inNode: true]) { it.stage(action: 'gate', specBase64: 'eyJhIjoxfQ==', step: '2', executionId: 'E1', pipeline: 'P') }
runCase('stage traffic exit 0', [codes: [0], inNode: true]) { it.stage(action: 'traffic', spec: 'release.yaml', step: '1') }
runCase('stage exit 3', [codes: [3], inNode: true]) { it.stage(action: 'gate', spec: 'release.yaml', step: '1') }
runCase('stage in the image', [codes: [0], onPath: false, inNode: true, env: [KUBECONFIG: '/secrets/kubeconfig']]) {
  it.stage(action: 'gate', specBase64: 'eyJhIjoxfQ==', step: '2', executionId: 'E1', pipeline: 'P', image: image)
}

// Every value that comes from Spinnaker or the job parameters, hostile: each must reach clover-cd as one argument.
String hostileWaiting = waiting.replace('CLOVER_CD_STEP=1', "CLOVER_CD_STEP=${hostile.step}")
runCase('hostile release', [codes: [3, 0], props: [hostileWaiting, null], evidence: true]) {
  it.release(spec: h[0], context: h[1], platform: h[2], evidenceDir: h[3], reportDir: h[4], approvers: h[5], agent: h[6])
}
runCase('hostile stage', [codes: [0], inNode: true]) {
  it.stage(action: h[0], specBase64: h[1], step: h[2], weight: h[3], window: h[4], executionId: h[5], pipeline: h[6], context: h[7])
}
runCase('hostile stage in the image', [codes: [0], inNode: true, onPath: false]) {
  it.stage(action: h[0], specBase64: h[1], step: h[2], weight: h[3], window: h[4], executionId: h[5], pipeline: h[6], context: h[7], image: image)
}
runCase('hostile install source', [codes: [0], onPath: false]) { it.release(spec: 'release.yaml', install: "npm:${h[0]}") }

println JsonOutput.toJson([name: 'sandbox', used: SandboxModel.used as List])

// The harness itself refuses what a controller would: input inside node, a workspace step outside node, and a
// call no whitelist names.
runCase('harness: input inside node', [:]) { lib -> lib.node('') { lib.input(message: 'ok?', parameters: []) } }
runCase('harness: sh outside node', [:]) { lib -> lib.sh('true') }
runCase('harness: a call the sandbox refuses', [:]) { lib -> shell.parse("new File('/etc/hostname').getText()").run() }
