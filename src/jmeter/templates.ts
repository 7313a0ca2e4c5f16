/**
 * Handlebars source of the .jmx clover-cd renders. `{{ }}` escapes &, <, >, quotes and `=` as XML entities.
 * Only element classes that both JMeter 2.13 (Debian) and 5.x load: TestPlan, ThreadGroup, LoopController,
 * HTTPSamplerProxy, HeaderManager, UserParameters, ConstantTimer, ConstantThroughputTimer, ResponseAssertion,
 * DurationAssertion. No listeners: the runner passes `-l` and the save-service properties on the command line.
 */
export const JMX_TEMPLATE = `<?xml version="1.0" encoding="UTF-8"?>
<jmeterTestPlan version="1.2" properties="2.8" jmeter="2.13 r1665067">
  <hashTree>
    <TestPlan guiclass="TestPlanGui" testclass="TestPlan" testname="{{name}}" enabled="true">
      <stringProp name="TestPlan.comments">rendered by clover-cd</stringProp>
      <boolProp name="TestPlan.functional_mode">false</boolProp>
      <boolProp name="TestPlan.tearDown_on_shutdown">true</boolProp>
      <boolProp name="TestPlan.serialize_threadgroups">false</boolProp>
      <elementProp name="TestPlan.user_defined_variables" elementType="Arguments" guiclass="ArgumentsPanel" testclass="Arguments" testname="User Defined Variables" enabled="true">
        <collectionProp name="Arguments.arguments"/>
      </elementProp>
      <stringProp name="TestPlan.user_define_classpath"></stringProp>
    </TestPlan>
    <hashTree>
      <ThreadGroup guiclass="ThreadGroupGui" testclass="ThreadGroup" testname="ThreadGroup" enabled="true">
        <stringProp name="ThreadGroup.on_sample_error">continue</stringProp>
        <elementProp name="ThreadGroup.main_controller" elementType="LoopController" guiclass="LoopControlPanel" testclass="LoopController" testname="Loop Controller" enabled="true">
          <boolProp name="LoopController.continue_forever">false</boolProp>
          <stringProp name="LoopController.loops">{{loops}}</stringProp>
        </elementProp>
        <stringProp name="ThreadGroup.num_threads">{{threads}}</stringProp>
        <stringProp name="ThreadGroup.ramp_time">{{rampS}}</stringProp>
        <boolProp name="ThreadGroup.scheduler">{{scheduler}}</boolProp>
        <stringProp name="ThreadGroup.duration">{{durationS}}</stringProp>
        <stringProp name="ThreadGroup.delay"></stringProp>
      </ThreadGroup>
      <hashTree>
{{#if throughputPerMinute}}
        <ConstantThroughputTimer guiclass="TestBeanGUI" testclass="ConstantThroughputTimer" testname="target throughput" enabled="true">
          <intProp name="calcMode">2</intProp>
          <doubleProp>
            <name>throughput</name>
            <value>{{throughputPerMinute}}</value>
            <savedValue>0.0</savedValue>
          </doubleProp>
        </ConstantThroughputTimer>
        <hashTree/>
{{/if}}
{{#each requests}}
        <HTTPSamplerProxy guiclass="HttpTestSampleGui" testclass="HTTPSamplerProxy" testname="{{label}}" enabled="true">
{{#if body}}
          <boolProp name="HTTPSampler.postBodyRaw">true</boolProp>
          <elementProp name="HTTPsampler.Arguments" elementType="Arguments">
            <collectionProp name="Arguments.arguments">
              <elementProp name="" elementType="HTTPArgument">
                <boolProp name="HTTPArgument.always_encode">false</boolProp>
                <stringProp name="Argument.value">{{body}}</stringProp>
                <stringProp name="Argument.metadata">=</stringProp>
              </elementProp>
            </collectionProp>
          </elementProp>
{{else}}
          <elementProp name="HTTPsampler.Arguments" elementType="Arguments" guiclass="HTTPArgumentsPanel" testclass="Arguments" testname="User Defined Variables" enabled="true">
            <collectionProp name="Arguments.arguments"/>
          </elementProp>
{{/if}}
          <stringProp name="HTTPSampler.domain">{{domain}}</stringProp>
          <stringProp name="HTTPSampler.port">{{port}}</stringProp>
          <stringProp name="HTTPSampler.protocol">{{protocol}}</stringProp>
          <stringProp name="HTTPSampler.contentEncoding">UTF-8</stringProp>
          <stringProp name="HTTPSampler.path">{{path}}</stringProp>
          <stringProp name="HTTPSampler.method">{{method}}</stringProp>
          <boolProp name="HTTPSampler.follow_redirects">false</boolProp>
          <boolProp name="HTTPSampler.auto_redirects">false</boolProp>
          <boolProp name="HTTPSampler.use_keepalive">true</boolProp>
          <boolProp name="HTTPSampler.DO_MULTIPART_POST">false</boolProp>
          <stringProp name="HTTPSampler.implementation">HttpClient4</stringProp>
          <stringProp name="HTTPSampler.connect_timeout">{{timeoutMs}}</stringProp>
          <stringProp name="HTTPSampler.response_timeout">{{timeoutMs}}</stringProp>
        </HTTPSamplerProxy>
        <hashTree>
          <HeaderManager guiclass="HeaderPanel" testclass="HeaderManager" testname="HTTP Header Manager" enabled="true">
            <collectionProp name="HeaderManager.headers">
{{#each headers}}
              <elementProp name="" elementType="Header">
                <stringProp name="Header.name">{{name}}</stringProp>
                <stringProp name="Header.value">{{value}}</stringProp>
              </elementProp>
{{/each}}
            </collectionProp>
          </HeaderManager>
          <hashTree/>
          <UserParameters guiclass="UserParametersGui" testclass="UserParameters" testname="record user-agent" enabled="true">
            <collectionProp name="UserParameters.names">
              <stringProp name="0">{{../userAgentVariable}}</stringProp>
            </collectionProp>
            <collectionProp name="UserParameters.thread_values">
              <collectionProp name="0">
                <stringProp name="0">{{userAgent}}</stringProp>
              </collectionProp>
            </collectionProp>
            <boolProp name="UserParameters.per_iteration">false</boolProp>
          </UserParameters>
          <hashTree/>
{{#if thinkTimeMs}}
          <ConstantTimer guiclass="ConstantTimerGui" testclass="ConstantTimer" testname="think time" enabled="true">
            <stringProp name="ConstantTimer.delay">{{thinkTimeMs}}</stringProp>
          </ConstantTimer>
          <hashTree/>
{{/if}}
{{#if statusPattern}}
          <ResponseAssertion guiclass="AssertionGui" testclass="ResponseAssertion" testname="status" enabled="true">
            <collectionProp name="Asserion.test_strings">
              <stringProp name="0">{{statusPattern}}</stringProp>
            </collectionProp>
            <stringProp name="Assertion.test_field">Assertion.response_code</stringProp>
            <boolProp name="Assertion.assume_success">true</boolProp>
            <intProp name="Assertion.test_type">1</intProp>
          </ResponseAssertion>
          <hashTree/>
{{/if}}
{{#each containsPatterns}}
          <ResponseAssertion guiclass="AssertionGui" testclass="ResponseAssertion" testname="body contains" enabled="true">
            <collectionProp name="Asserion.test_strings">
              <stringProp name="0">{{this}}</stringProp>
            </collectionProp>
            <stringProp name="Assertion.test_field">Assertion.response_data</stringProp>
            <boolProp name="Assertion.assume_success">false</boolProp>
            <intProp name="Assertion.test_type">2</intProp>
          </ResponseAssertion>
          <hashTree/>
{{/each}}
{{#if maxTimeMs}}
          <DurationAssertion guiclass="DurationAssertionGui" testclass="DurationAssertion" testname="max time" enabled="true">
            <stringProp name="DurationAssertion.duration">{{maxTimeMs}}</stringProp>
          </DurationAssertion>
          <hashTree/>
{{/if}}
        </hashTree>
{{/each}}
      </hashTree>
    </hashTree>
  </hashTree>
</jmeterTestPlan>
`;
