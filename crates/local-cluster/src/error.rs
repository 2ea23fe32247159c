//! API errors, rendered as `kind: Status` bodies exactly as kube-apiserver writes them.

use serde_json::{Value, json};

/// An error answer of the API: HTTP code, reason and the `details` the real server sends.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// A field-level cause inside `details.causes`.
#[derive(Debug, Clone)]
pub struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(resource: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
            .with_details(json!({"name": name, "kind": resource}))
    }

    pub fn already_exists(resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{resource} \"{name}\" already exists"),
        )
        .with_details(json!({"name": name, "kind": resource}))
    }

    pub fn conflict(resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        )
        .with_details(json!({"name": name, "kind": resource}))
    }

    pub fn conflict_message(kind: &str, name: &str, message: String) -> Self {
        Self::new(409, "Conflict", message).with_details(json!({"name": name, "kind": kind}))
    }

    /// 422 Invalid: `details.kind` is the Kind (with group), unlike the other errors.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let message = if summary.len() == 1 {
            format!("{qualified} \"{name}\" is invalid: {}", summary[0])
        } else {
            format!(
                "{qualified} \"{name}\" is invalid: [{}]",
                summary.join(", ")
            )
        };
        let causes: Vec<Value> = causes
            .into_iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        let mut details = json!({"name": name, "kind": kind, "causes": causes});
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        Self::new(422, "Invalid", message).with_details(details)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>, details: Value) -> Self {
        Self::new(403, "Forbidden", message).with_details(details)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "406: Not Acceptable\n\nAvailable representations: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
        .with_details(json!({}))
    }

    pub fn unsupported_media_type(message: Option<&str>) -> Self {
        match message {
            Some(m) => Self::new(415, "UnsupportedMediaType", m),
            None => Self::new(415, "UnsupportedMediaType", "415: Unsupported Media Type")
                .with_details(json!({})),
        }
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn timeout_too_large_rv(requested: u64, current: u64) -> Self {
        Self::new(504, "Timeout", format!("Timeout: Too large resource version: {requested}, current: {current}"))
            .with_details(json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}))
    }

    pub fn field_manager_conflicts(conflicts: &[(String, String)]) -> Self {
        // conflicts: (manager, field path)
        let mut by_manager: Vec<(&str, Vec<&str>)> = Vec::new();
        for (manager, field) in conflicts {
            match by_manager.iter_mut().find(|(m, _)| *m == manager) {
                Some((_, fields)) => fields.push(field),
                None => by_manager.push((manager, vec![field])),
            }
        }
        let parts: Vec<String> = by_manager
            .iter()
            .map(|(m, fields)| {
                let list: Vec<String> = fields.iter().map(|f| format!("- {f}")).collect();
                format!("conflicts with \"{m}\":\n{}", list.join("\n"))
            })
            .collect();
        let noun = if conflicts.len() == 1 {
            "conflict"
        } else {
            "conflicts"
        };
        let message = format!(
            "Apply failed with {} {noun}: {}",
            conflicts.len(),
            parts.join("\n")
        );
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, f)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": f}))
            .collect();
        Self::new(409, "Conflict", message).with_details(json!({"causes": causes}))
    }

    /// The `kind: Status` body.
    pub fn status(&self) -> Value {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(details) = &self.details {
            body["details"] = details.clone();
        }
        body["code"] = json!(self.code);
        body
    }
}

impl Cause {
    pub fn invalid(field: impl Into<String>, value: &Value, why: &str) -> Self {
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {shown}: {why}"),
            field: field.into(),
        }
    }

    pub fn required(field: impl Into<String>, why: &str) -> Self {
        let message = if why.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {why}")
        };
        Cause {
            reason: "FieldValueRequired",
            message,
            field: field.into(),
        }
    }

    pub fn not_supported(field: impl Into<String>, value: &Value, allowed: &[Value]) -> Self {
        let allowed: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
        Cause {
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: {value}: supported values: {}",
                allowed.join(", ")
            ),
            field: field.into(),
        }
    }

    pub fn type_invalid(field: impl Into<String>, value: &Value, message: String) -> Self {
        let _ = value;
        Cause {
            reason: "FieldValueTypeInvalid",
            message,
            field: field.into(),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        Cause {
            reason: "FieldValueDuplicate",
            message: format!("Duplicate value: {value}"),
            field: field.into(),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
