// Launcher for Debian's JMeter 2.13: Debian pairs it with XStream >= 1.4.18, whose default allow-list
// rejects every JMeter class, so stock `jmeter` cannot load any .jmx ("ForbiddenClassException:
// org.apache.jmeter.save.ScriptWrapper"). This class takes JMeter's own class loader, lets the .jmx/.jtl
// XStream instances accept JMeter's types, then hands over to JMeter's normal entry point.
// clover-cd only runs plans it rendered itself through this launcher.
// Build: javac -cp /usr/share/jmeter/bin/ApacheJMeter.jar -d <dir> JMeterXStreamFix.java
import java.lang.reflect.Field;
import java.lang.reflect.Method;

public class JMeterXStreamFix {
    public static void main(String[] args) throws Exception {
        Class<?> driver = Class.forName("org.apache.jmeter.NewDriver");
        Field loaderField = driver.getDeclaredField("loader");
        loaderField.setAccessible(true);
        ClassLoader loader = (ClassLoader) loaderField.get(null);
        Thread.currentThread().setContextClassLoader(loader);

        String home = System.getProperty("jmeter.home", "/usr/share/jmeter");
        Class<?> utils = Class.forName("org.apache.jmeter.util.JMeterUtils", true, loader);
        utils.getMethod("setJMeterHome", String.class).invoke(null, home);
        utils.getMethod("loadJMeterProperties", String.class).invoke(null, home + "/bin/jmeter.properties");
        // SaveService's static initialiser logs at INFO before JMeter configures logging; keep stdout clean.
        Class.forName("org.apache.jorphan.logging.LoggingManager", true, loader)
            .getMethod("setPriority", String.class, String.class).invoke(null, "WARN", "jmeter.save");

        Class<?> saveService = Class.forName("org.apache.jmeter.save.SaveService", true, loader);
        Class<?> xstream = Class.forName("com.thoughtworks.xstream.XStream", true, loader);
        Class<?> permission = Class.forName("com.thoughtworks.xstream.security.TypePermission", true, loader);
        Method allowTypesByWildcard = xstream.getMethod("allowTypesByWildcard", String[].class);
        Object patterns = new String[] {"org.apache.jmeter.**", "org.apache.jorphan.**", "java.**"};
        for (String name : new String[] {"JMXSAVER", "JTLSAVER"}) {
            Field f = saveService.getDeclaredField(name);
            f.setAccessible(true);
            allowTypesByWildcard.invoke(f.get(null), patterns);
        }
        driver.getMethod("main", String[].class).invoke(null, (Object) args);
    }
}
