/**
 * Jest's global setup: the options of the JVMs this suite starts, unless the caller set their own. `JVM_ARGS`
 * reaches every JMeter (clover-cd passes it on, as JMeter's own bin/jmeter does); `JAVA_OPTS` reaches groovy
 * (the Jenkins library's harness). These JVMs are short-lived, so the C2 compiler's and G1's start-up work is
 * most of their CPU: C1 only and the serial collector took the JMeter JVMs from 628 to 566 CPU s of the whole
 * suite (quiet), and groovy from 13.8 to 6.9. What the tests assert depends on neither; users keep their own.
 */
const QUICK_START = '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC';

module.exports = async () => {
  process.env.JVM_ARGS ??= QUICK_START;
  process.env.JAVA_OPTS ??= QUICK_START;
};
