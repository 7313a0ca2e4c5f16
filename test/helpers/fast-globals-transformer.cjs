/**
 * ts-jest, plus one line at the top of every transformed module that binds the builtins it uses to module
 * constants. Jest runs each suite in a vm context, where every read of a global (`Math.exp`, `JSON.parse`)
 * goes through the context's interceptor: a loop of Math.exp took 540 ms there against 20 ms in Node, and
 * the gate's calibration simulations ran ten times slower than for users. A module constant is read directly.
 * Only builtins nothing replaces during a test (not Date or the timers, which fake timers swap); a module that
 * declares one of these names itself keeps the global.
 */
const { TsJestTransformer } = require('ts-jest');

const BUILTINS = ['Math', 'JSON', 'Number', 'String', 'Object', 'Array', 'Map', 'Set', 'Buffer', 'Symbol'];

function prelude(source) {
  const bound = BUILTINS.filter(
    (name) =>
      new RegExp(`\\b${name}\\b`).test(source) &&
      !new RegExp(
        `\\b(?:const|let|var|function|class|as)\\s+${name}\\b|import\\s+${name}\\b|[{,]\\s*${name}\\s*[,}]`,
      ).test(source),
  );
  return bound.length ? `const { ${bound.join(', ')} } = globalThis;` : '';
}

class FastGlobalsTransformer extends TsJestTransformer {
  process(source, path, options) {
    const out = super.process(source, path, options);
    return { ...out, code: prelude(source) + out.code };
  }

  async processAsync(source, path, options) {
    const out = await super.processAsync(source, path, options);
    return { ...out, code: prelude(source) + out.code };
  }

  getCacheKey(source, path, options) {
    return `fast-globals-1:${super.getCacheKey(source, path, options)}`;
  }

  async getCacheKeyAsync(source, path, options) {
    return `fast-globals-1:${await super.getCacheKeyAsync(source, path, options)}`;
  }
}

module.exports = { createTransformer: (config) => new FastGlobalsTransformer(config) };
