//! Custom health checks written in Lua, in Argo CD's format: argocd-cm keys
//! `resource.customizations.health.<group>_<kind>` (the core group is just `<kind>`; `*`
//! globs allowed), or the legacy `resource.customizations` YAML block with `health.lua`
//! entries. The script sees the live object as the global `obj` and returns a table with
//! `status` (Healthy, Progressing, Degraded, Suspended, Missing, Unknown) and `message`.
//!
//! Scripts run in a fresh Lua 5.1 interpreter — the dialect of gopher-lua, which Argo CD
//! embeds, so `table.getn`, `unpack`, number printing (`4/2` is `2`, also in `..`) and the
//! rest behave as Argo's scripts expect — with only the `table`, `string` and `math`
//! libraries, an `os` table holding just `time` and `date`, an instruction budget and a
//! memory limit, so a bad script cannot hang the controller, exhaust its memory or touch the
//! host. JSON `null` reaches a script as `nil`, as Argo's decoding gives it, and an error is
//! one line.

use std::collections::BTreeMap;

use mlua::{HookTriggers, Lua, LuaOptions, LuaSerdeExt, StdLib, VmState};
use serde_json::Value;
use tiphys_model::application::HealthStatusCode;

use crate::Health;

/// Instructions a script may run per call.
const BUDGET: u64 = 10_000_000;
/// Memory a script's interpreter may hold (the object it judges included).
const MEMORY_LIMIT: usize = 64 << 20;
const PREFIX: &str = "resource.customizations.health.";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("health script for {target}: {message}")]
pub struct ScriptError {
    pub target: String,
    pub message: String,
}

/// The custom health scripts of argocd-cm, keyed by `group_kind` pattern.
#[derive(Clone, Debug, Default)]
pub struct CustomHealth {
    scripts: Vec<(String, String)>,
    /// `group/Kind` globs the health library leaves alone (`tiphys.health.library.disabled`).
    library_off: Vec<String>,
}

/// argocd-cm's key listing the kinds the health library must not judge.
pub const LIBRARY_DISABLED: &str = "tiphys.health.library.disabled";

impl CustomHealth {
    /// Scripts from argocd-cm's data.
    pub fn from_config(data: &BTreeMap<String, String>) -> CustomHealth {
        let mut scripts: Vec<(String, String)> = data
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(PREFIX)?.to_string(), v.clone())))
            .collect();
        if let Some(block) = data.get("resource.customizations")
            && let Ok(parsed) =
                serde_saphyr::from_str::<BTreeMap<String, BTreeMap<String, String>>>(block)
        {
            for (group_kind, entries) in parsed {
                if let Some(script) = entries.get("health.lua") {
                    let key = match group_kind.rsplit_once('/') {
                        Some((group, kind)) => format!("{group}_{kind}"),
                        None => group_kind.clone(),
                    };
                    scripts.push((key, script.clone()));
                }
            }
        }
        let library_off = data
            .get(LIBRARY_DISABLED)
            .map(|v| {
                v.split([',', '\n'])
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        CustomHealth {
            scripts,
            library_off,
        }
    }

    /// Whether the health library may judge `group`/`kind`.
    pub fn library_enabled(&self, group: &str, kind: &str) -> bool {
        let key = format!("{group}/{kind}");
        !self
            .library_off
            .iter()
            .any(|p| tiphys_model::glob::matches(p, &key))
    }

    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }

    fn script_for(&self, group: &str, kind: &str) -> Option<(&str, &str)> {
        let key = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{group}_{kind}")
        };
        self.scripts
            .iter()
            .find(|(pattern, _)| *pattern == key)
            .or_else(|| {
                self.scripts
                    .iter()
                    .find(|(pattern, _)| tiphys_model::glob::matches(pattern, &key))
            })
            .map(|(p, s)| (p.as_str(), s.as_str()))
    }

    /// The object's health by its custom script, if one applies. A failing script yields
    /// Unknown with the error as the message, as in Argo CD.
    pub fn assess(&self, group: &str, kind: &str, live: &Value) -> Option<Health> {
        self.decide(group, kind, live).map(|(h, _)| h)
    }

    /// Like [`CustomHealth::assess`], with the argocd-cm key of the script that decided.
    pub fn decide(&self, group: &str, kind: &str, live: &Value) -> Option<(Health, String)> {
        let (target, script) = self.script_for(group, kind)?;
        let key = format!("{PREFIX}{target}");
        Some((self.judge(target, script, live), key))
    }

    fn judge(&self, target: &str, script: &str, live: &Value) -> Health {
        match run(script, live) {
            Ok(h) => h,
            Err(message) => Health::new(
                HealthStatusCode::Unknown,
                ScriptError {
                    target: target.to_string(),
                    message,
                }
                .to_string(),
            ),
        }
    }
}

/// Run one script against `obj`.
pub fn run(script: &str, obj: &Value) -> Result<Health, String> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    lua.set_memory_limit(MEMORY_LIMIT)
        .map_err(|e| one_line(&e))?;
    let spent = std::sync::atomic::AtomicU64::new(0);
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(10_000),
        move |_, _| {
            let total = spent.fetch_add(10_000, std::sync::atomic::Ordering::Relaxed) + 10_000;
            if total > BUDGET {
                Err(mlua::Error::RuntimeError(
                    "script exceeded its instruction budget".into(),
                ))
            } else {
                Ok(VmState::Continue)
            }
        },
    )
    .map_err(|e| e.to_string())?;
    argo_os::install(&lua).map_err(|e| one_line(&e))?;
    // JSON null is nil, as Argo's decoding gives it (not a light userdata a script cannot test).
    let options = mlua::SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let value = lua.to_value_with(obj, options).map_err(|e| one_line(&e))?;
    lua.globals().set("obj", value).map_err(|e| one_line(&e))?;
    let result: mlua::Value = lua
        .load(script)
        .set_name("health.lua")
        .eval()
        .map_err(|e| one_line(&e))?;
    let table = match result {
        // Nothing returned: an empty status, as in Argo CD.
        mlua::Value::Nil => return Ok(Health::new(HealthStatusCode::Unknown, String::new())),
        mlua::Value::Table(t) => t,
        other => {
            return Err(format!(
                "the script returned {} instead of a table",
                other.type_name()
            ));
        }
    };
    let status: Option<String> = table.get("status").map_err(|e| one_line(&e))?;
    let message: Option<String> = table.get("message").map_err(|e| one_line(&e))?;
    let Some(status) = status.filter(|s| !s.is_empty()) else {
        return Ok(Health::new(
            HealthStatusCode::Unknown,
            message.unwrap_or_default(),
        ));
    };
    let status: HealthStatusCode = serde_json::from_value(Value::String(status.clone()))
        .map_err(|_| {
            format!(
                "health status {status:?} is not one of Healthy, Progressing, Degraded, Suspended, Missing, Unknown"
            )
        })?;
    Ok(Health::new(status, message.unwrap_or_default()))
}

/// An error as one line: the message without the stack traceback Lua appends.
fn one_line(e: &mlua::Error) -> String {
    let text = e.to_string();
    text.lines()
        .next()
        .unwrap_or_default()
        .trim()
        .trim_start_matches("runtime error: ")
        .to_string()
}

/// Argo CD's `os`: only `time` and `date`, in UTC — nothing that reaches the host.
mod argo_os {
    use k8s_openapi::jiff;
    use mlua::{Lua, Table, Value};

    pub fn install(lua: &Lua) -> mlua::Result<()> {
        // The base library's file readers reach the host's filesystem.
        for reader in ["dofile", "loadfile"] {
            lua.globals().set(reader, Value::Nil)?;
        }
        let os = lua.create_table()?;
        os.set("time", lua.create_function(time)?)?;
        os.set("date", lua.create_function(date)?)?;
        lua.globals().set("os", os)
    }

    /// `os.time()` now, or `os.time{year=, month=, day=, hour=, min=, sec=}` (UTC).
    fn time(_: &Lua, fields: Option<Table>) -> mlua::Result<i64> {
        use jiff::civil;
        let Some(t) = fields else {
            return Ok(jiff::Timestamp::now().as_second());
        };
        let get = |k: &str, default: Option<i64>| -> mlua::Result<i64> {
            match t.get::<Option<i64>>(k)? {
                Some(v) => Ok(v),
                None => default.ok_or_else(|| {
                    mlua::Error::RuntimeError(format!("field '{k}' missing in date table"))
                }),
            }
        };
        let at = civil::date(
            get("year", None)? as i16,
            get("month", None)? as i8,
            get("day", None)? as i8,
        )
        .at(
            get("hour", Some(12))? as i8,
            get("min", Some(0))? as i8,
            get("sec", Some(0))? as i8,
            0,
        );
        let zoned = at
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| mlua::Error::RuntimeError(e.to_string()))?;
        Ok(zoned.timestamp().as_second())
    }

    /// `os.date(format, time)` in UTC: `*t` gives a table, anything else strftime.
    fn date(lua: &Lua, (format, at): (Option<String>, Option<i64>)) -> mlua::Result<Value> {
        let at = match at {
            Some(s) => jiff::Timestamp::from_second(s)
                .map_err(|e| mlua::Error::RuntimeError(e.to_string()))?,
            None => jiff::Timestamp::now(),
        };
        let zoned = at.to_zoned(jiff::tz::TimeZone::UTC);
        let format = format.unwrap_or_else(|| "%c".into());
        let format = format.trim_start_matches('!');
        if format.starts_with("*t") {
            let t = lua.create_table()?;
            t.set("year", zoned.year())?;
            t.set("month", zoned.month())?;
            t.set("day", zoned.day())?;
            t.set("hour", zoned.hour())?;
            t.set("min", zoned.minute())?;
            t.set("sec", zoned.second())?;
            t.set("wday", zoned.weekday().to_sunday_one_offset())?;
            t.set("yday", zoned.day_of_year())?;
            t.set("isdst", false)?;
            return Ok(Value::Table(t));
        }
        let text = jiff::fmt::strtime::format(format, &zoned)
            .map_err(|e| mlua::Error::RuntimeError(format!("os.date: {e}")))?;
        Ok(Value::String(lua.create_string(&text)?))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CERTIFICATE: &str = r#"
hs = {}
if obj.status ~= nil and obj.status.conditions ~= nil then
  for i, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" and condition.status == "False" then
      hs.status = "Degraded"
      hs.message = condition.message
      return hs
    end
    if condition.type == "Ready" and condition.status == "True" then
      hs.status = "Healthy"
      hs.message = condition.message
      return hs
    end
  end
end
hs.status = "Progressing"
hs.message = "Waiting for certificate"
return hs
"#;

    #[test]
    fn argo_style_scripts_assess_custom_resources() {
        let data = BTreeMap::from([(
            format!("{PREFIX}cert-manager.io_Certificate"),
            CERTIFICATE.to_string(),
        )]);
        let custom = CustomHealth::from_config(&data);
        let mut cert = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"}});
        assert_eq!(
            custom
                .assess("cert-manager.io", "Certificate", &cert)
                .unwrap()
                .status,
            HealthStatusCode::Progressing
        );
        cert["status"] = json!({"conditions": [{"type": "Ready", "status": "False", "message": "issuer missing"}]});
        let h = custom
            .assess("cert-manager.io", "Certificate", &cert)
            .unwrap();
        assert_eq!(
            (h.status, h.message.as_str()),
            (HealthStatusCode::Degraded, "issuer missing")
        );
        assert!(custom.assess("apps", "Deployment", &cert).is_none());
    }

    #[test]
    fn legacy_block_globs_and_failures() {
        let data = BTreeMap::from([
            (
                "resource.customizations".to_string(),
                "example.com/Widget:\n  health.lua: |\n    return {status = \"Suspended\"}\n"
                    .to_string(),
            ),
            (
                format!("{PREFIX}*.loops.io_*"),
                "while true do end".to_string(),
            ),
            (
                format!("{PREFIX}ConfigMap"),
                "return {status = \"Sideways\"}".to_string(),
            ),
        ]);
        let custom = CustomHealth::from_config(&data);
        let obj = json!({"metadata": {"name": "x"}});
        assert_eq!(
            custom.assess("example.com", "Widget", &obj).unwrap().status,
            HealthStatusCode::Suspended
        );
        let looping = custom.assess("a.loops.io", "Anything", &obj).unwrap();
        assert_eq!(looping.status, HealthStatusCode::Unknown);
        assert!(looping.message.contains("budget"), "{}", looping.message);
        let bad = custom.assess("", "ConfigMap", &obj).unwrap();
        assert!(bad.message.contains("Sideways"), "{}", bad.message);
    }

    #[test]
    fn scripts_cannot_reach_the_host() {
        let readers = run(
            "return {status = 'Healthy', message = tostring(dofile == nil and loadfile == nil)}",
            &json!({}),
        )
        .unwrap();
        assert_eq!(readers.message, "true");
        let err = run("return {status = os.getenv(\"HOME\")}", &json!({})).unwrap_err();
        assert!(err.contains("getenv"), "{err}");
        for escape in [
            "io.open('/etc/passwd')",
            "require('os')",
            "os.execute('true')",
            "debug.getinfo(1)",
        ] {
            assert!(
                run(
                    &format!("{escape}; return {{status = 'Healthy'}}"),
                    &json!({})
                )
                .is_err(),
                "{escape}"
            );
        }
    }

    fn status_of(script: &str, obj: Value) -> (HealthStatusCode, String) {
        let h = run(script, &obj).unwrap();
        (h.status, h.message)
    }

    #[test]
    fn json_null_is_nil() {
        let obj = json!({"status": {"replicas": null, "conditions": [{"type": "Ready", "reason": null}]}});
        let script = r#"
if obj.status.replicas == nil and obj.status.conditions[1].reason == nil then
  return {status = "Healthy", message = type(obj.status.replicas)}
end
return {status = "Degraded"}
"#;
        assert_eq!(
            status_of(script, obj),
            (HealthStatusCode::Healthy, "nil".into())
        );
    }

    #[test]
    fn lua_5_1_functions_and_number_printing() {
        let script = r#"
local t = {10, 20, 30}
t[7] = 70
local a, b = unpack({1, 2})
return {status = "Healthy", message = table.getn({1, 2, 3}) .. " " .. table.maxn(t) .. " " .. a + b .. " " .. tostring(4/2) .. " " .. tostring(2.5) .. " " .. tostring(7) .. " " .. 4/2 .. " " .. obj.n / 4}
"#;
        assert_eq!(status_of(script, json!({"n": 10})).1, "3 7 3 2 2.5 7 2 2.5");
    }

    #[test]
    fn a_script_that_allocates_without_bound_is_stopped() {
        let err = run("local s = 'x'; while true do s = s .. s end", &json!({})).unwrap_err();
        assert!(err.contains("memory"), "{err}");
        let err = run(
            "local t = {}; local i = 0; while true do i = i + 1; t[i] = {i} end",
            &json!({}),
        )
        .unwrap_err();
        assert!(err.contains("memory") || err.contains("budget"), "{err}");
    }

    #[test]
    fn os_time_and_date_only() {
        let script = r#"
local t = os.time{year=2026, month=12, day=1, hour=10, min=30, sec=0}
local d = os.date("!*t", t)
return {status = "Healthy", message = t .. " " .. os.date("!%Y-%m-%dT%H:%M:%SZ", t) .. " " .. d.hour .. " " .. tostring(os.time() > t - 100000000)}
"#;
        assert_eq!(
            status_of(script, json!({})).1,
            "1796121000 2026-12-01T10:30:00Z 10 true"
        );
    }

    #[test]
    fn errors_are_one_line_and_odd_returns_are_explained() {
        let err = run("error('broken here')", &json!({})).unwrap_err();
        assert!(!err.contains('\n') && err.contains("broken here"), "{err}");
        let err = run("local x = nil; return x.y", &json!({})).unwrap_err();
        assert!(!err.contains("traceback"), "{err}");
        let err = run("return {status = 'Sideways'}", &json!({})).unwrap_err();
        assert!(err.contains("\"Sideways\" is not one of Healthy"), "{err}");
        assert_eq!(
            status_of("return nil", json!({})).0,
            HealthStatusCode::Unknown
        );
        assert_eq!(
            status_of("return {}", json!({})).0,
            HealthStatusCode::Unknown
        );
        assert!(
            run("return 'Healthy'", &json!({}))
                .unwrap_err()
                .contains("string")
        );
    }
}
