//! Sync windows: an AppProject's `spec.syncWindows` as Argo CD evaluates them. A window
//! applies to an app by name, destination namespace or cluster (globs; any of the lists, or all
//! of the given ones with `andOperator`), is active from each tick of its cron `schedule` (in
//! its `timeZone`) for its `duration`, and then:
//!
//! * no window applies: syncs are allowed;
//! * an active deny window blocks every sync — a manual one only passes if every active deny
//!   window has `manualSync`;
//! * otherwise an active allow window allows;
//! * otherwise, when allow windows apply but none is active, syncs are blocked — a manual one
//!   passes if one of them has `manualSync`.
//!
//! A window that cannot be read (a bad schedule, duration or time zone) blocks syncs, and says
//! which window and why: a typo must not silently open production.

use k8s_openapi::jiff::{SignedDuration, Timestamp, tz::TimeZone};
use tiphys_model::glob::matches;
use tiphys_model::project::SyncWindow;
use tiphys_model::{AppProject, Application};

/// A window that applies to an app, with what it is now.
#[derive(Clone, Debug, PartialEq)]
pub struct Assigned {
    /// Its position in the project's list (what `proj windows` calls its ID).
    pub id: usize,
    pub window: SyncWindow,
    pub active: bool,
    /// Why it could not be evaluated.
    pub error: Option<String>,
}

/// The windows that apply to one app, evaluated at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Windows {
    pub assigned: Vec<Assigned>,
    /// When some window next opens or closes (for a wake-up then).
    pub next_change: Option<Timestamp>,
}

fn any_match(patterns: &[String], values: &[&str]) -> bool {
    patterns
        .iter()
        .any(|p| values.iter().any(|v| !v.is_empty() && matches(p, v)))
}

/// Whether `window` applies to `app`.
pub fn applies(window: &SyncWindow, app: &Application) -> bool {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let d = &app.spec.destination;
    let checks = [
        (&window.applications, vec![name]),
        (&window.namespaces, vec![d.namespace.as_str()]),
        (&window.clusters, vec![d.server.as_str(), d.name.as_str()]),
    ];
    let given: Vec<bool> = checks
        .iter()
        .filter(|(patterns, _)| !patterns.is_empty())
        .map(|(patterns, values)| any_match(patterns, values))
        .collect();
    if window.and_operator {
        !given.is_empty() && given.iter().all(|m| *m)
    } else {
        given.iter().any(|m| *m)
    }
}

/// Whether `window` is active at `now`, and when that next changes.
pub fn active(window: &SyncWindow, now: Timestamp) -> Result<(bool, Timestamp), String> {
    let schedule: croner::Cron = window
        .schedule
        .parse()
        .map_err(|e| format!("schedule {:?}: {e}", window.schedule))?;
    let duration = tiphys_model::validate::parse_duration(&window.duration)
        .and_then(|d| SignedDuration::try_from(d).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("duration {:?} is not a duration like 1h", window.duration))?;
    let zone = if window.time_zone.is_empty() {
        TimeZone::UTC
    } else {
        TimeZone::get(&window.time_zone)
            .map_err(|e| format!("timeZone {:?}: {e}", window.time_zone))?
    };
    let here = now.to_zoned(zone);
    let cron_error = |e: croner::errors::CronError| format!("schedule {:?}: {e}", window.schedule);
    // Active when the latest tick falls in (now - duration, now]; it then ends a duration
    // after that tick. Otherwise it opens at the next tick.
    if let Ok(last) = schedule.find_previous_occurrence(&here, true) {
        let end = last
            .checked_add(duration)
            .map_err(|e| format!("duration {:?}: {e}", window.duration))?;
        if end.timestamp() > now {
            return Ok((true, end.timestamp()));
        }
    }
    let next = schedule
        .find_next_occurrence(&here, false)
        .map_err(cron_error)?;
    Ok((false, next.timestamp()))
}

/// The windows of `project` that apply to `app`, at `now`.
pub fn evaluate(project: Option<&AppProject>, app: &Application, now: Timestamp) -> Windows {
    let mut out = Windows::default();
    let Some(project) = project else {
        return out;
    };
    for (id, window) in project.spec.sync_windows.iter().enumerate() {
        if !applies(window, app) {
            continue;
        }
        let (active, error) = match active(window, now) {
            Ok((active, change)) => {
                out.next_change = Some(out.next_change.map_or(change, |c| c.min(change)));
                (active, None)
            }
            Err(e) => (false, Some(e)),
        };
        out.assigned.push(Assigned {
            id,
            window: window.clone(),
            active,
            error,
        });
    }
    out
}

impl Windows {
    fn deny(w: &Assigned) -> bool {
        w.window.kind == "deny"
    }

    /// Why a sync (`manual` or automatic) is not allowed now, or None when it is.
    pub fn blocked(&self, manual: bool) -> Option<String> {
        if let Some(bad) = self.assigned.iter().find(|w| w.error.is_some()) {
            return Some(format!(
                "sync window {} cannot be evaluated: {}",
                bad.id,
                bad.error.clone().unwrap_or_default()
            ));
        }
        let active_deny: Vec<&Assigned> = self
            .assigned
            .iter()
            .filter(|w| w.active && Self::deny(w))
            .collect();
        if !active_deny.is_empty() {
            if manual && active_deny.iter().all(|w| w.window.manual_sync) {
                return None;
            }
            return Some(format!(
                "blocked by an active deny sync window ({})",
                active_deny
                    .iter()
                    .map(|w| format!("{} {}", w.window.schedule, w.window.duration))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        if self.assigned.iter().any(|w| w.active && !Self::deny(w)) {
            return None;
        }
        let allows: Vec<&Assigned> = self.assigned.iter().filter(|w| !Self::deny(w)).collect();
        if allows.is_empty() || (manual && allows.iter().any(|w| w.window.manual_sync)) {
            return None;
        }
        Some("blocked: no allow sync window is active".to_string())
    }

    /// What `tiphys app get` and the UI say.
    pub fn summary(&self) -> String {
        if self.assigned.is_empty() {
            return "none (syncs allowed)".into();
        }
        let active = self.assigned.iter().filter(|w| w.active).count();
        let state = match (self.blocked(false), self.blocked(true)) {
            (None, _) => "sync allowed".to_string(),
            (Some(_), None) => "manual sync allowed".to_string(),
            (Some(why), Some(_)) => format!("sync denied: {why}"),
        };
        format!("{active} active of {}; {state}", self.assigned.len())
    }
}

/// Why a manual sync of `app` is not allowed now (its project read from the cluster), for
/// clients that write the operation themselves (the CLI in core mode).
pub async fn manual_sync_blocked(
    client: &kube::Client,
    app: &Application,
) -> Result<Option<String>, kube::Error> {
    let namespace = app.metadata.namespace.clone().unwrap_or_default();
    let name = if app.spec.project.is_empty() {
        "default"
    } else {
        app.spec.project.as_str()
    };
    let projects: kube::Api<AppProject> = kube::Api::namespaced(client.clone(), &namespace);
    let project = projects.get_opt(name).await?;
    Ok(evaluate(project.as_ref(), app, Timestamp::now()).blocked(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(kind: &str, schedule: &str, duration: &str) -> SyncWindow {
        SyncWindow {
            kind: kind.into(),
            schedule: schedule.into(),
            duration: duration.into(),
            applications: vec!["*".into()],
            ..Default::default()
        }
    }

    fn app(name: &str, namespace: &str) -> Application {
        let mut app = Application::default();
        app.metadata.name = Some(name.into());
        app.spec.destination.namespace = namespace.into();
        app.spec.destination.server = "https://kubernetes.default.svc".into();
        app
    }

    fn project(windows: Vec<SyncWindow>) -> AppProject {
        let mut p = AppProject::default();
        p.spec.sync_windows = windows;
        p
    }

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    #[test]
    fn a_window_is_active_for_its_duration_after_each_tick() {
        // Every day at 22:00 UTC for 1h.
        let w = window("allow", "0 22 * * *", "1h");
        assert_eq!(
            active(&w, at("2026-12-01T22:30:00Z")).unwrap(),
            (true, at("2026-12-01T23:00:00Z"))
        );
        assert_eq!(
            active(&w, at("2026-12-01T23:00:00Z")).unwrap(),
            (false, at("2026-12-02T22:00:00Z"))
        );
        assert_eq!(
            active(&w, at("2026-12-01T21:59:00Z")).unwrap(),
            (false, at("2026-12-01T22:00:00Z"))
        );
        // Overlapping ticks: it ends a duration after the latest one.
        let every = window("deny", "*/10 * * * *", "30m");
        assert_eq!(
            active(&every, at("2026-12-01T10:05:00Z")).unwrap(),
            (true, at("2026-12-01T10:30:00Z"))
        );
    }

    #[test]
    fn time_zones_move_the_window() {
        let mut w = window("allow", "0 9 * * *", "1h");
        w.time_zone = "Europe/Berlin".into();
        // 09:00 in Berlin is 08:00 UTC in winter.
        assert!(active(&w, at("2026-12-01T08:30:00Z")).unwrap().0);
        assert!(!active(&w, at("2026-12-01T09:30:00Z")).unwrap().0);
    }

    #[test]
    fn which_windows_apply() {
        let mut w = window("deny", "* * * * *", "1h");
        w.applications = vec!["pay-*".into()];
        assert!(applies(&w, &app("pay-api", "web")));
        assert!(!applies(&w, &app("web", "web")));
        w.namespaces = vec!["prod".into()];
        assert!(applies(&w, &app("web", "prod")), "lists are OR-ed");
        w.and_operator = true;
        assert!(!applies(&w, &app("web", "prod")), "unless andOperator");
        assert!(applies(&w, &app("pay-api", "prod")));
        let mut by_cluster = window("deny", "* * * * *", "1h");
        by_cluster.applications.clear();
        by_cluster.clusters = vec!["https://kubernetes.default.svc".into()];
        assert!(applies(&by_cluster, &app("any", "any")));
    }

    #[test]
    fn what_may_sync() {
        let now = at("2026-12-01T12:00:00Z");
        let a = app("web", "web");
        let verdict = |windows: Vec<SyncWindow>| evaluate(Some(&project(windows)), &a, now);
        // No windows.
        assert_eq!(verdict(vec![]).blocked(false), None);
        // An active deny: both blocked; with manualSync, manual passes.
        let deny = window("deny", "0 12 * * *", "1h");
        let v = verdict(vec![deny.clone()]);
        assert!(v.blocked(false).is_some() && v.blocked(true).is_some());
        let mut manual_deny = deny.clone();
        manual_deny.manual_sync = true;
        let v = verdict(vec![manual_deny]);
        assert!(v.blocked(false).is_some());
        assert_eq!(v.blocked(true), None);
        // An inactive deny: allowed.
        assert_eq!(
            verdict(vec![window("deny", "0 3 * * *", "1h")]).blocked(false),
            None
        );
        // Allow windows: only while one is active; deny beats allow.
        let open = window("allow", "0 12 * * *", "1h");
        let closed = window("allow", "0 3 * * *", "1h");
        assert_eq!(
            verdict(vec![open.clone(), closed.clone()]).blocked(false),
            None
        );
        let v = verdict(vec![closed.clone()]);
        assert_eq!(
            v.blocked(false).as_deref(),
            Some("blocked: no allow sync window is active")
        );
        assert!(v.blocked(true).is_some());
        let mut manual_closed = closed;
        manual_closed.manual_sync = true;
        assert_eq!(verdict(vec![manual_closed]).blocked(true), None);
        assert!(verdict(vec![open, deny]).blocked(false).is_some());
        // A window that does not apply changes nothing.
        let mut elsewhere = window("deny", "0 12 * * *", "1h");
        elsewhere.applications = vec!["other".into()];
        let v = verdict(vec![elsewhere]);
        assert!(v.assigned.is_empty() && v.blocked(false).is_none());
    }

    #[test]
    fn a_window_that_cannot_be_read_blocks_and_says_why() {
        let now = at("2026-12-01T12:00:00Z");
        let a = app("web", "web");
        for (schedule, duration, zone, says) in [
            ("not a cron", "1h", "", "schedule \"not a cron\""),
            ("0 12 * * *", "forever", "", "duration \"forever\""),
            (
                "0 12 * * *",
                "1h",
                "Mars/Olympus",
                "timeZone \"Mars/Olympus\"",
            ),
        ] {
            let mut w = window("allow", schedule, duration);
            w.time_zone = zone.into();
            let v = evaluate(Some(&project(vec![w])), &a, now);
            let why = v.blocked(true).unwrap();
            assert!(why.contains("sync window 0") && why.contains(says), "{why}");
        }
    }

    #[test]
    fn the_next_change_is_the_nearest_open_or_close() {
        let now = at("2026-12-01T12:10:00Z");
        let v = evaluate(
            Some(&project(vec![
                window("deny", "0 12 * * *", "1h"),
                window("allow", "0 18 * * *", "1h"),
            ])),
            &app("web", "web"),
            now,
        );
        assert_eq!(v.next_change, Some(at("2026-12-01T13:00:00Z")));
        assert!(
            v.summary().starts_with("1 active of 2; sync denied"),
            "{}",
            v.summary()
        );
    }
}
