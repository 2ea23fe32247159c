//! What Argo's `repo` functions answer beyond their arguments — the metadata of the app's
//! commits and the details of its source, looked up by the controller before a plan — lent
//! to the template and condition functions for the length of one plan: both engines take
//! plain function pointers, which cannot carry it.

use std::cell::RefCell;

use serde_json::Value;

/// What the controller looked up for one app.
#[derive(Clone, Debug, Default)]
pub struct Lookups {
    /// SHA → its metadata, as [`crate::template::commit_metadata`] makes it (see
    /// `Config::wants_commit_metadata`), else null.
    pub commits: Value,
    /// Argo's `RepoAppDetailsResponse` JSON of the app's source, or why there is none; none
    /// when not looked up (see `Config::wants_app_details`).
    pub app_details: Option<Result<Value, String>>,
}

#[derive(Default)]
struct Lent {
    /// SHA → Argo's `CommitMetadata` (Go field names).
    commits: Value,
    /// Argo's `AppDetail` (Go field names), or null when not looked up or not found.
    app_details: Value,
    /// Why the app details could not be looked up.
    app_details_error: Option<String>,
}

thread_local! {
    static LENT: RefCell<Lent> = RefCell::new(Lent::default());
}

/// Takes back what was lent when dropped.
pub struct Loan(());

impl Drop for Loan {
    fn drop(&mut self) {
        LENT.with(|l| *l.borrow_mut() = Lent::default());
    }
}

/// Lend what was looked up until the returned loan is dropped.
pub fn lend(lookups: &Lookups) -> Loan {
    LENT.with(|l| {
        *l.borrow_mut() = Lent {
            commits: lookups.commits.clone(),
            app_details: match &lookups.app_details {
                Some(Ok(details)) => go_names(details),
                _ => Value::Null,
            },
            app_details_error: match &lookups.app_details {
                Some(Err(e)) => Some(e.clone()),
                _ => None,
            },
        }
    });
    Loan(())
}

/// `GetCommitMetadata(sha)`.
pub fn commit(sha: &str) -> Result<Value, String> {
    LENT.with(|l| l.borrow().commits.get(sha).cloned())
        .ok_or_else(|| {
            format!(
                "GetCommitMetadata: commit {sha:?} is not a revision of the application (its \
                 synced, compared or last deployed revision)"
            )
        })
}

/// `GetAppDetails()`.
pub fn app_details() -> Result<Value, String> {
    LENT.with(|l| {
        let l = l.borrow();
        match (&l.app_details, &l.app_details_error) {
            (_, Some(error)) => Err(format!("GetAppDetails: {error}")),
            (Value::Null, None) => {
                Err("GetAppDetails: the application's source was not read".into())
            }
            (details, None) => Ok(details.clone()),
        }
    })
}

/// Argo's JSON names as its Go structs spell them (`valueFiles` → `ValueFiles`), which is how
/// templates and conditions name them.
fn go_names(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let mut chars = k.chars();
                    let key = chars
                        .next()
                        .map(|c| c.to_uppercase().chain(chars).collect())
                        .unwrap_or_default();
                    (key, go_names(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(go_names).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_is_lent_is_answered_until_the_loan_ends() {
        let details = json!({"type": "Helm", "helm": {"parameters": [{"name": "image.tag", "value": "1.2"}]}});
        {
            let _loan = lend(&Lookups {
                commits: json!({"abc": {"Message": "m"}}),
                app_details: Some(Ok(details)),
            });
            assert_eq!(commit("abc").unwrap()["Message"], "m");
            assert!(commit("def").unwrap_err().contains("\"def\""));
            let got = app_details().unwrap();
            assert_eq!(got["Type"], "Helm");
            assert_eq!(
                crate::functions::helm_parameter(&got["Helm"], "Parameters", "Value", "image.tag"),
                "1.2"
            );
            assert_eq!(
                crate::functions::helm_parameter(&got["Helm"], "Parameters", "Value", "x"),
                ""
            );
        }
        assert!(commit("abc").is_err());
        assert!(app_details().is_err());
        let _loan = lend(&Lookups {
            commits: Value::Null,
            app_details: Some(Err("rendering r path \"p\": boom".into())),
        });
        assert!(app_details().unwrap_err().contains("boom"));
    }
}
