// The Groovy sandbox check of jenkinsci/script-security, as the Jenkins library harness applies it: every method
// call on an object (not a Pipeline step), constructor, `+` and subscript of the library is resolved to the
// signature the sandbox looks up — SandboxInterceptor.onMethodCall / onGetArray and GroovyCallSiteSelector.method:
// the most general declaration first (supertypes before subtypes), then the GDK classes with the receiver as first
// argument — and refused unless test/conformance/jenkins/sandbox-whitelist.txt (lines of the real whitelist) names it.
// Not modelled: property reads of maps, `env` and `currentBuild` (script-security and workflow-cps permit them),
// comparisons, ++ and for-in iteration (the library uses them only on numbers, strings and lists).
import java.lang.reflect.Method
import java.lang.reflect.Modifier
import org.codehaus.groovy.ast.ClassCodeExpressionTransformer
import org.codehaus.groovy.ast.ClassHelper
import org.codehaus.groovy.ast.ClassNode
import org.codehaus.groovy.ast.expr.*
import org.codehaus.groovy.classgen.GeneratorContext
import org.codehaus.groovy.control.CompilePhase
import org.codehaus.groovy.control.SourceUnit
import org.codehaus.groovy.control.customizers.CompilationCustomizer
import org.codehaus.groovy.runtime.DefaultGroovyMethods
import org.codehaus.groovy.runtime.InvokerHelper
import org.codehaus.groovy.runtime.StringGroovyMethods
import org.codehaus.groovy.syntax.Token
import org.codehaus.groovy.syntax.Types

class SandboxModel {
  static Set<String> whitelist = [] as Set
  /** Every signature the library used, permitted or not, in first-use order. */
  static Set<String> used = [] as LinkedHashSet
  static final List<Class> GDK = [DefaultGroovyMethods, StringGroovyMethods]
  static final Set<String> NUMBER_MATH = ['plus', 'minus', 'multiply', 'div', 'compareTo', 'or', 'and', 'xor', 'intdiv', 'mod', 'leftShift', 'rightShift', 'rightShiftUnsigned'] as Set

  /** The compilation customizer that routes a script's calls through this model. */
  static CompilationCustomizer customizer() { return new Customizer() }

  static void load(File file) {
    whitelist = file.readLines().findAll { it.trim() && !it.startsWith('#') }.collect { it.trim() } as Set
  }

  static Object call(Object receiver, String name, Object[] args) {
    if (receiver == null) throw new NullPointerException("Cannot invoke method ${name}() on null object")
    Method m = method(receiver, name, args)
    if (m == null && receiver instanceof Number && NUMBER_MATH.contains(name)) return InvokerHelper.invokeMethod(receiver, name, args)
    if (m != null) {
      permit(signature(m))
    } else {
      Object[] self = [receiver] + (args as List) as Object[]
      List<String> found = GDK.collect { find(it, name, self) }.findAll { it }.collect { signature(it) }
      if (!found) throw new MissingMethodException(name, receiver.getClass(), args)
      permit(found.find { whitelist.contains(it) } ?: found[0])
    }
    return InvokerHelper.invokeMethod(receiver, name, args)
  }

  static Object callStatic(Class type, String name, Object[] args) {
    Method m = find(type, name, args)
    if (m == null) throw new MissingMethodException(name, type, args)
    permit(signature(m))
    return InvokerHelper.invokeStaticMethod(type, name, args)
  }

  static Object construct(Class type, Object[] args) {
    def c = type.declaredConstructors.findAll { matches(it.parameterTypes, args) }.sort { -it.parameterTypes.length }.find { true }
    permit("new ${name(type)}${c ? c.parameterTypes.collect { ' ' + name(it) }.join('') : ''}")
    return InvokerHelper.invokeConstructorOf(type, args)
  }

  /** onGetArray: the receiver's own getAt, else the first GDK class that has one decides. */
  static Object getAt(Object receiver, Object index) {
    subscript(receiver, 'getAt', [index] as Object[])
    return InvokerHelper.invokeMethod(receiver, 'getAt', [index] as Object[])
  }

  /** onSetArray, as getAt. */
  static Object putAt(Object receiver, Object index, Object value) {
    subscript(receiver, 'putAt', [index, value] as Object[])
    InvokerHelper.invokeMethod(receiver, 'putAt', [index, value] as Object[])
    return value
  }

  private static void subscript(Object receiver, String name, Object[] args) {
    if (receiver.getClass().isArray() && args[0] instanceof Integer) return
    Method m = method(receiver, name, args)
    if (m == null) m = GDK.collect { find(it, name, [receiver] + (args as List) as Object[]) }.find { it }
    if (m == null) throw new SecurityException("No such ${name} method found for ${name(receiver.getClass())}")
    permit(signature(m))
  }

  private static void permit(String signature) {
    used << signature
    if (!whitelist.contains(signature)) throw new SecurityException("Scripts not permitted to use ${signature}")
  }

  /** GroovyCallSiteSelector.method: the declaration in the most general type that accepts the arguments. */
  static Method method(Object receiver, String name, Object[] args) {
    Set<Class> types = new LinkedHashSet<Class>()
    visit(types, receiver.getClass())
    for (Class c : types) {
      Method m = find(c, name, args)
      if (m != null) return m
    }
    return receiver instanceof GString ? find(String, name, args) : null
  }

  private static void visit(Set<Class> types, Class c) {
    if (c.superclass) visit(types, c.superclass)
    for (Class i : c.interfaces) visit(types, i)
    types << c
  }

  private static Method find(Class c, String name, Object[] args) {
    Method best = null
    for (Method m : declared(c)) {
      if (m.name != name || !matches(m.parameterTypes, args)) continue
      if (best == null || moreSpecific(m, best)) best = m
    }
    return best
  }

  private static final Map<Class, List<Method>> DECLARED = [:]

  /** A tie keeps the first candidate; the JVM's declaredMethods order is unspecified, so take them sorted. */
  private static List<Method> declared(Class c) {
    if (!DECLARED.containsKey(c)) DECLARED[c] = c.declaredMethods.sort(false) { it.toString() }
    return DECLARED[c]
  }

  private static boolean matches(Class[] types, Object[] args) {
    if (types.length != args.length) return false
    for (int i = 0; i < types.length; i++) {
      Object a = args[i]
      if (a == null) { if (types[i].isPrimitive()) return false; continue }
      Class t = types[i].isPrimitive() ? wrap(types[i]) : types[i]
      if (t.isInstance(a) || (t == String && a instanceof GString) || (t == Long && a instanceof Integer)) continue
      return false
    }
    return true
  }

  /** GroovyCallSiteSelector.isMoreSpecific: the first parameter that tells them apart decides. */
  private static boolean moreSpecific(Method more, Method less) {
    for (int i = 0; i < more.parameterTypes.length; i++) {
      Class m = wrap(more.parameterTypes[i]), l = wrap(less.parameterTypes[i])
      if (m.isAssignableFrom(l)) return false
      if (l.isAssignableFrom(m)) return true
      if (m == Long && l == Integer) return false
      if (m == Integer && l == Long) return true
    }
    return more.toString() > less.toString()
  }

  private static Class wrap(Class c) {
    return c.isPrimitive() ? [(int): Integer, (long): Long, (boolean): Boolean, (char): Character, (double): Double, (float): Float, (short): Short, (byte): Byte][c] : c
  }

  static String name(Class c) { return c.isArray() ? name(c.componentType) + '[]' : c.name }

  static String signature(Method m) {
    String kind = Modifier.isStatic(m.modifiers) ? 'staticMethod' : 'method'
    return "${kind} ${name(m.declaringClass)} ${m.name}${m.parameterTypes.collect { ' ' + name(it) }.join('')}"
  }

  /** Rewrites the library's calls (not its steps: those are calls on the script itself) to go through SandboxModel. */
  static class Customizer extends CompilationCustomizer {
    Customizer() { super(CompilePhase.CANONICALIZATION) }

    void call(SourceUnit source, GeneratorContext context, ClassNode classNode) {
      new Transformer(source: source).visitClass(classNode)
    }
  }

  static class Transformer extends ClassCodeExpressionTransformer {
    SourceUnit source
    static final ClassNode MODEL = ClassHelper.make(SandboxModel)

    SourceUnit getSourceUnit() { return source }

    private static Expression model(String method, List<Expression> args) {
      return new StaticMethodCallExpression(MODEL, method, new ArgumentListExpression(args))
    }

    private List<Expression> arguments(Expression args) {
      List<Expression> list = args instanceof TupleExpression ? ((TupleExpression) args).expressions : [args]
      if (list.size() == 1 && list[0] instanceof MapExpression) return [transform(list[0])] // named arguments: one Map
      return list.collect { transform(it) }
    }

    private static Expression array(List<Expression> values) {
      return new ArrayExpression(ClassHelper.OBJECT_TYPE, values)
    }

    Expression transform(Expression e) {
      if (e instanceof ClosureExpression) {
        e.code.visit(this)
        return e
      }
      if (e instanceof MethodCallExpression && !e.implicitThis) {
        if (e.safe || e.spreadSafe) throw new IllegalStateException("line ${e.lineNumber}: ?. and *. are not modelled; write the call plainly")
        Expression receiver = e.objectExpression
        if (receiver instanceof VariableExpression && receiver.isThisExpression()) return e.transformExpression(this)
        List<Expression> args = arguments(e.arguments)
        if (receiver instanceof ClassExpression) return model('callStatic', [receiver, new ConstantExpression(e.methodAsString), array(args)])
        return model('call', [transform(receiver), new ConstantExpression(e.methodAsString), array(args)])
      }
      if (e instanceof ConstructorCallExpression && !e.isSpecialCall()) {
        return model('construct', [new ClassExpression(e.type), array(arguments(e.arguments))])
      }
      if (e instanceof BinaryExpression) {
        int op = e.operation.type
        if (op == Types.PLUS) return model('call', [transform(e.leftExpression), new ConstantExpression('plus'), array([transform(e.rightExpression)])])
        if (op == Types.LEFT_SQUARE_BRACKET) return model('getAt', [transform(e.leftExpression), transform(e.rightExpression)])
        if (op == Types.ASSIGN && e.leftExpression instanceof BinaryExpression && e.leftExpression.operation.type == Types.LEFT_SQUARE_BRACKET) {
          BinaryExpression target = e.leftExpression
          return model('putAt', [transform(target.leftExpression), transform(target.rightExpression), transform(e.rightExpression)])
        }
        if (op == Types.PLUS_EQUAL) {
          if (!(e.leftExpression instanceof VariableExpression)) throw new IllegalStateException("line ${e.lineNumber}: += is modelled on variables only")
          Expression sum = model('call', [e.leftExpression, new ConstantExpression('plus'), array([transform(e.rightExpression)])])
          return new BinaryExpression(e.leftExpression, Token.newSymbol(Types.ASSIGN, e.operation.startLine, e.operation.startColumn), sum)
        }
      }
      return e.transformExpression(this)
    }
  }
}
