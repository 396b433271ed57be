#!/usr/bin/env bash
# Type-check the dashboard against Grafana's own schema (@grafana/schema, the TypeScript types Grafana generates
# from its CUE dashboard and panel-plugin kinds), with the TypeScript compiler's excess-property checks: a misspelt
# or unknown field, a wrong value type or an enum value Grafana does not know is an error.
#
# Not part of .ci/run: it needs Node.js and the npm registry. Run it after editing the dashboard:
#     bash deploy/grafana/check-schema.sh            # the schema of the Grafana docker-compose.yml runs
#     GRAFANA_SCHEMA=13.2.3 bash deploy/grafana/check-schema.sh   # or of another release
# Enums are compared by their string values (the JSON holds strings, not TypeScript enum members). Panel options and
# field-config "custom" blocks are checked as deep partials: Grafana fills omitted options from the plugin defaults.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dashboard="${1:-$here/dashboards/mmctl.json}"
compose_grafana="$(sed -n 's#^ *image: grafana/grafana:\([0-9.]*\).*#\1#p' "$here/../../docker-compose.yml")"
version="${GRAFANA_SCHEMA:-$compose_grafana}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "@grafana/schema@${version:?no Grafana image in docker-compose.yml; set GRAFANA_SCHEMA}" typescript@5 >/dev/null
python3 - "$dashboard" >check.ts <<'EOF'
import glob
import json
import sys

dashboard = json.load(open(sys.argv[1]))
plugins = {"timeseries": "TimeSeries", "stat": "Stat", "bargauge": "BarGauge"}


def module(pattern: str) -> str:
    """The generated types' module: its directory layout changed between Grafana releases (dist/esm, dist/types)."""
    found = sorted(glob.glob(f"node_modules/@grafana/schema/dist/*/raw/{pattern}types.gen.d.ts"))
    if not found:
        sys.exit(f"check-schema: no generated types for {pattern} in this @grafana/schema")
    return "./" + found[0].removesuffix(".d.ts")


print(f'import type {{ Dashboard, Panel, RowPanel }} from "{module("dashboard/x/*")}";')
for plugin, name in plugins.items():
    print(f'import type * as {name} from "{module(f"composable/{plugin}/panelcfg/x/*")}";')
print("type Loose<T> = T extends string ? `${T}` : T extends (infer U)[] ? Loose<U>[] "
      ": T extends object ? { [K in keyof T]: Loose<T[K]> } : T;")
print("type LoosePartial<T> = T extends string ? `${T}` : T extends (infer U)[] ? LoosePartial<U>[] "
      ": T extends object ? { [K in keyof T]?: LoosePartial<T[K]> } : T;")
print(f"export const dashboard: Loose<Dashboard> = {json.dumps(dashboard)};")


def walk(panels):
    for panel in panels:
        yield panel
        yield from walk(panel.get("panels", []))


for i, panel in enumerate(walk(dashboard["panels"])):
    kind = panel["type"]
    if kind == "row":
        print(f"export const row{i}: Loose<RowPanel> = {json.dumps(panel)};")
        continue
    if kind not in plugins:
        sys.exit(f"check-schema: no panel types for {kind!r} (panel {panel.get('title')!r}); add it to plugins")
    name = plugins[kind]
    print(f"// {panel.get('title')}")
    print(f"export const options{i}: LoosePartial<{name}.Options> = {json.dumps(panel.get('options', {}))};")
    custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
    if custom is not None:
        if kind != "timeseries":
            sys.exit(f"check-schema: {kind} panels have no custom field config (panel {panel.get('title')!r})")
        print(f"export const custom{i}: LoosePartial<{name}.FieldConfig> = {json.dumps(custom)};")
    print(f"export const panel{i}: Loose<Panel> = {json.dumps(panel)};")
EOF
npx tsc --noEmit --strict --moduleResolution node --target es2020 check.ts
echo "check-schema: $(basename "$dashboard") conforms to @grafana/schema $(node -p 'require("@grafana/schema/package.json").version')"
