//! Custom health checks written in Lua, in Argo CD's format: argocd-cm keys
//! `resource.customizations.health.<group>_<kind>` (the core group is just `<kind>`; `*`
//! globs allowed), or the legacy `resource.customizations` YAML block with `health.lua`
//! entries. The script sees the live object as the global `obj` and returns a table with
//! `status` (Healthy, Progressing, Degraded, Suspended, Missing, Unknown) and `message`.
//!
//! Scripts run in a fresh interpreter with only the `table`, `string` and `math` libraries and
//! an instruction budget, so a bad script cannot hang the controller or touch the host.

use std::collections::BTreeMap;

use mlua::{HookTriggers, Lua, LuaOptions, LuaSerdeExt, StdLib, VmState};
use serde_json::Value;
use tiphys_model::application::HealthStatusCode;

use crate::Health;

/// Instructions a script may run per call.
const BUDGET: u64 = 10_000_000;
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
}

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
        CustomHealth { scripts }
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
        let (target, script) = self.script_for(group, kind)?;
        Some(match run(script, live) {
            Ok(h) => h,
            Err(message) => Health::new(
                HealthStatusCode::Unknown,
                ScriptError {
                    target: target.to_string(),
                    message,
                }
                .to_string(),
            ),
        })
    }
}

/// Run one script against `obj`.
pub fn run(script: &str, obj: &Value) -> Result<Health, String> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )
    .map_err(|e| e.to_string())?;
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
    let value = lua.to_value(obj).map_err(|e| e.to_string())?;
    lua.globals().set("obj", value).map_err(|e| e.to_string())?;
    let result: mlua::Value = lua
        .load(script)
        .set_name("health.lua")
        .eval()
        .map_err(|e| e.to_string())?;
    let table = match result {
        mlua::Value::Table(t) => t,
        other => {
            return Err(format!(
                "the script returned {} instead of a table",
                other.type_name()
            ));
        }
    };
    let status: String = table.get("status").map_err(|e| e.to_string())?;
    let message: Option<String> = table.get("message").map_err(|e| e.to_string())?;
    let status: HealthStatusCode = serde_json::from_value(Value::String(status.clone()))
        .map_err(|_| format!("unknown health status {status:?}"))?;
    Ok(Health::new(status, message.unwrap_or_default()))
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
        let err = run("return {status = os.getenv(\"HOME\")}", &json!({})).unwrap_err();
        assert!(err.contains("os"), "{err}");
    }
}
