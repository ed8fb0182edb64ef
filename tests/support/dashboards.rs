//! Walking the Grafana dashboards' JSON (`dashboards/*.json`).

use serde_json::Value;

/// The array under `key`, or none if it is missing or not an array.
pub fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

/// Every panel of a dashboard, rows' nested panels included, in order.
pub fn all_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a [Value], out: &mut Vec<&'a Value>) {
        for panel in panels {
            out.push(panel);
            walk(array(panel, "panels"), out);
        }
    }
    let mut out = Vec::new();
    walk(array(dashboard, "panels"), &mut out);
    out
}
