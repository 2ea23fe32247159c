//! The templates the built-in triggers send; a `template.<name>` of the same name replaces
//! one (or adds a per-service body, e.g. `webhook.<service>`).

use crate::template::{EmailSpec, TemplateSpec};

const LINK: &str =
    "{{if .context.argocdUrl}} {{.context.argocdUrl}}/applications/{{.app.metadata.name}}{{end}}";

pub fn templates() -> Vec<(String, TemplateSpec)> {
    let entries: [(&str, &str, String); 10] = [
        (
            "app-created",
            "Application {{.app.metadata.name}} has been created.",
            format!("Application {{{{.app.metadata.name}}}} has been created.{LINK}"),
        ),
        (
            "app-deleted",
            "Application {{.app.metadata.name}} has been deleted.",
            "Application {{.app.metadata.name}} has been deleted.".into(),
        ),
        (
            "app-deployed",
            "New version of an application {{.app.metadata.name}} is up and running.",
            format!(
                "Application {{{{.app.metadata.name}}}} is now running revision {{{{.app.status.sync.revision}}}}.{LINK}"
            ),
        ),
        (
            "app-health-degraded",
            "Application {{.app.metadata.name}} has degraded.",
            format!(
                "Application {{{{.app.metadata.name}}}} has degraded: {{{{.app.status.health.message}}}}{LINK}"
            ),
        ),
        (
            "app-sync-failed",
            "Failed to sync application {{.app.metadata.name}}.",
            format!(
                "The sync of application {{{{.app.metadata.name}}}} has failed at {{{{.app.status.operationState.finishedAt}}}}: {{{{.app.status.operationState.message}}}}{LINK}"
            ),
        ),
        (
            "app-sync-running",
            "Start syncing application {{.app.metadata.name}}.",
            format!(
                "The sync of application {{{{.app.metadata.name}}}} has started at {{{{.app.status.operationState.startedAt}}}}.{LINK}"
            ),
        ),
        (
            "app-sync-status-unknown",
            "Application {{.app.metadata.name}} sync status is 'Unknown'",
            format!("Application {{{{.app.metadata.name}}}} sync status is unknown.{LINK}"),
        ),
        (
            "app-sync-succeeded",
            "Application {{.app.metadata.name}} has been successfully synced.",
            format!(
                "Application {{{{.app.metadata.name}}}} has been successfully synced at {{{{.app.status.operationState.finishedAt}}}}.{LINK}"
            ),
        ),
        (
            "app-drift-detected",
            "Application {{.app.metadata.name}} has drifted from Git.",
            format!(
                "Application {{{{.app.metadata.name}}}} {{{{if .drift.reverted}}}}was changed outside Git and self-heal reverted it{{{{else}}}}has drifted from Git{{{{end}}}}: {{{{.drift.summary}}}}{LINK}"
            ),
        ),
        (
            "app-auto-sync-paused-too-long",
            "Auto-sync of application {{.app.metadata.name}} is still paused.",
            format!(
                "Auto-sync of application {{{{.app.metadata.name}}}} has been paused for over {{{{.pause.limit}}}}: {{{{.pause.description}}}}{LINK}"
            ),
        ),
    ];
    entries
        .into_iter()
        .map(|(name, subject, message)| {
            (
                name.to_string(),
                TemplateSpec {
                    message,
                    email: Some(EmailSpec {
                        subject: subject.to_string(),
                    }),
                    ..TemplateSpec::default()
                },
            )
        })
        .collect()
}
