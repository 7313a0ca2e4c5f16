// Runs vars/cloverCd.groovy against a stub of the Jenkins steps it calls (sh with scripted exit codes, junit,
// archiveArtifacts, publishHTML, input, withEnv, readFile/writeFile, currentBuild.result) — every case in this
// one JVM — and prints one JSON object per case: the build result, the error, and the steps called in order.
// Usage: groovy harness.groovy <path of vars/cloverCd.groovy>. (Script.setProperty writes the binding, so the
// harness sets the stub's fields through their setters)
import groovy.json.JsonOutput
import org.codehaus.groovy.control.CompilerConfiguration

class StepError extends RuntimeException { StepError(String m) { super(m) } }

/** The Jenkins side: every step a library call makes is recorded; sh answers from the case's script. */
abstract class JenkinsStub extends Script {
  List calls = []
  Map files = [:]
  Map env = [WORKSPACE: '/ws']
  Map currentBuild = [result: null]
  Closure onSh
  String inputAnswer = 'continue'
  boolean htmlPublisher = true
  List envStack = []

  def sh(String script) { return sh([script: script]) }
  def sh(Map m) {
    calls << [step: 'sh', script: m.script, env: envStack.flatten()]
    def r = onSh ? onSh.call(m.script as String, this) : 0
    if (m.returnStdout) return (r instanceof String) ? r : ''
    if (m.returnStatus) return r as int
    if ((r as int) != 0) throw new StepError("script returned exit code ${r}")
    return null
  }
  def echo(String m) { calls << [step: 'echo', message: m] }
  def error(String m) { calls << [step: 'error', message: m]; throw new StepError(m) }
  def unstable(String m) { calls << [step: 'unstable', message: m]; if (currentBuild.result != 'FAILURE') currentBuild.result = 'UNSTABLE' }
  def junit(Map m) { calls << [step: 'junit', testResults: m.testResults, allowEmptyResults: m.allowEmptyResults] }
  def archiveArtifacts(Map m) { calls << [step: 'archiveArtifacts', artifacts: m.artifacts] }
  def choice(Map m) { return [type: 'choice'] + m }
  def input(Map m) { calls << [step: 'input', message: m.message, choices: m.parameters*.choices]; if (inputAnswer == 'ABORT') throw new StepError('Aborted by user'); return inputAnswer }
  def withEnv(List vars, Closure body) { calls << [step: 'withEnv', vars: vars]; envStack << vars; try { body.call() } finally { envStack.remove(envStack.size() - 1) } }
  def fileExists(String f) { return files.containsKey(f) }
  def readFile(String f) { return files[f] }
  def readFile(Map m) { return files[m.file] }
  def writeFile(Map m) { files[m.file] = m.text; calls << [step: 'writeFile', file: m.file] }
  def methodMissing(String name, Object args) {
    if (name == 'publishHTML' && htmlPublisher) { calls << [step: 'publishHTML', target: args[0]]; return null }
    throw new MissingMethodException(name, getClass(), args as Object[])
  }
}

libraryFile = new File(args[0])
def config = new CompilerConfiguration()
config.scriptBaseClass = JenkinsStub.name
shell = new GroovyShell(this.class.classLoader, new Binding(), config)

/** A fresh library instance; `codes` are the exit codes of successive clover-cd runs, `props` what each writes. */
def runCase(String name, Map opts, Closure call) {
  def lib = shell.parse(libraryFile)
  List codes = opts.codes ?: [0]
  List props = opts.props ?: []
  int n = 0
  lib.setInputAnswer(opts.answer ?: 'continue')
  lib.setHtmlPublisher(opts.html != false)
  if (opts.evidence) lib.files['reports/bundle-1.md'] = '### gate **PASS** <b>'
  lib.setOnSh { String script, stub ->
    if (script.contains('command -v clover-cd')) return opts.onPath == false ? 1 : 0
    if (script.startsWith('ls ')) return opts.evidence ? 'reports/bundle-1.md' : ''
    if (script.contains('release run') || script.contains(' stage ')) {
      int code = codes[Math.min(n, codes.size() - 1)] as int
      def p = n < props.size() ? props[n] : null
      if (p) stub.files['clover-cd.properties'] = p
      else stub.files.remove('clover-cd.properties')
      n++
      return code
    }
    return 0
  }
  def out = [name: name]
  try {
    out.returned = call(lib)
  } catch (Throwable e) {
    out.error = e.message
  }
  out.result = lib.currentBuild.result ?: 'SUCCESS'
  out.calls = lib.calls
  println JsonOutput.toJson(out)
}

String waiting = '# clover-cd stage result\nCLOVER_CD_EXIT_CODE=3\nCLOVER_CD_PHASE=awaitingJudgment\nCLOVER_CD_STEP=1\n'
String inconclusive = '# clover-cd stage result\nCLOVER_CD_EXIT_CODE=3\nCLOVER_CD_PHASE=rolledBack\nCLOVER_CD_STEP=2\n'

for (int code : [0, 1, 2, 3, 4, 130]) {
  runCase("release exit ${code}", [codes: [code], props: [code == 3 ? inconclusive : null], evidence: true]) { it.release(spec: 'release.yaml') }
}
runCase('release waits for approval, continue', [codes: [3, 0], props: [waiting, null]]) { it.release(spec: 'release.yaml', approvers: 'release-managers') }
runCase('release waits for approval, rollback', [codes: [3, 0], props: [waiting, null], answer: 'rollback']) { it.release(spec: 'release.yaml') }
runCase('release waits for approval, aborted', [codes: [3, 0], props: [waiting, null], answer: 'ABORT']) { it.release(spec: 'release.yaml') }
runCase('release without HTML Publisher', [codes: [0], html: false, evidence: true]) { it.release(spec: 'release.yaml', autoApprove: true, platform: 'sandbox') }
runCase('release installs the package', [codes: [0], onPath: false]) { it.release(spec: 'release.yaml', version: '0.1.0') }
runCase('stage gate exit 4', [codes: [4]]) { it.stage(action: 'gate', specBase64: 'eyJhIjoxfQ==', step: '2', executionId: 'E1', pipeline: 'P') }
runCase('stage traffic exit 0', [codes: [0]]) { it.stage(action: 'traffic', spec: 'release.yaml', step: '1') }
runCase('stage exit 3', [codes: [3]]) { it.stage(action: 'gate', spec: 'release.yaml', step: '1') }
runCase('release without spec', [:]) { it.release() }
