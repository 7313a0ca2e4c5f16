#!/usr/bin/env bash
# Compiles the JMeter launcher (src/jmeter/launcher) when Debian's JMeter 2.13 is installed and the compiled
# class is missing or older than its source. Quiet and idempotent; the load runner compiles on demand too.
set -euo pipefail
cd "$(dirname "$0")/../.."
JMETER_HOME="${JMETER_HOME:-/usr/share/jmeter}"
SRC=src/jmeter/launcher/JMeterXStreamFix.java
OUT="${CLOVER_CD_JMETER_LAUNCHER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clover-cd/jmeter-launcher}"
[ -f "$JMETER_HOME/bin/ApacheJMeter.jar" ] || exit 0   # no Debian JMeter: the builtin engine is used
command -v javac >/dev/null 2>&1 || { echo "setup: javac missing; cannot build the JMeter launcher" >&2; exit 0; }
if [ ! -f "$OUT/JMeterXStreamFix.class" ] || [ "$SRC" -nt "$OUT/JMeterXStreamFix.class" ]; then
  mkdir -p "$OUT"
  javac -nowarn -cp "$JMETER_HOME/bin/ApacheJMeter.jar" -d "$OUT" "$SRC"
fi
