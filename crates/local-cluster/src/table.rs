//! `meta.k8s.io/v1` Table responses for `kubectl get`: NAME, the kind's own columns, AGE.

use serde_json::{Value, json};

use crate::clock;
use crate::resources::ResourceType;

struct Column {
    name: &'static str,
    description: &'static str,
    priority: u8,
    cell: fn(&Value) -> Value,
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn count(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn builtin_columns(rt: &ResourceType) -> Vec<Column> {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment") => vec![
            Column {
                name: "Ready",
                description: "Number of the pod with ready state",
                priority: 0,
                cell: |o| {
                    json!(format!(
                        "{}/{}",
                        count(&o["status"]["readyReplicas"]),
                        count(&o["spec"]["replicas"])
                    ))
                },
            },
            Column {
                name: "Up-to-date",
                description: "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                priority: 0,
                cell: |o| json!(count(&o["status"]["updatedReplicas"])),
            },
            Column {
                name: "Available",
                description: "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                priority: 0,
                cell: |o| json!(count(&o["status"]["availableReplicas"])),
            },
        ],
        ("apps", "StatefulSet") => vec![Column {
            name: "Ready",
            description: "Number of the pod with ready state",
            priority: 0,
            cell: |o| {
                json!(format!(
                    "{}/{}",
                    count(&o["status"]["readyReplicas"]),
                    count(&o["spec"]["replicas"])
                ))
            },
        }],
        ("apps", "ReplicaSet") => vec![
            Column {
                name: "Desired",
                description: "Number of desired pods.",
                priority: 0,
                cell: |o| json!(count(&o["spec"]["replicas"])),
            },
            Column {
                name: "Current",
                description: "Number of actual pods.",
                priority: 0,
                cell: |o| json!(count(&o["status"]["replicas"])),
            },
            Column {
                name: "Ready",
                description: "Number of ready pods.",
                priority: 0,
                cell: |o| json!(count(&o["status"]["readyReplicas"])),
            },
        ],
        ("apps", "DaemonSet") => vec![
            Column {
                name: "Desired",
                description: "Number of nodes that should run the daemon pod.",
                priority: 0,
                cell: |o| json!(count(&o["status"]["desiredNumberScheduled"])),
            },
            Column {
                name: "Ready",
                description: "Number of nodes with a ready daemon pod.",
                priority: 0,
                cell: |o| json!(count(&o["status"]["numberReady"])),
            },
        ],
        ("", "Pod") => vec![
            Column {
                name: "Ready",
                description: "The aggregate readiness state of this pod for accepting traffic.",
                priority: 0,
                cell: |o| {
                    let total = o["spec"]["containers"]
                        .as_array()
                        .map(Vec::len)
                        .unwrap_or(0);
                    let ready = o["status"]["containerStatuses"]
                        .as_array()
                        .map(|c| c.iter().filter(|x| x["ready"] == true).count())
                        .unwrap_or(0);
                    json!(format!("{ready}/{total}"))
                },
            },
            Column {
                name: "Status",
                description: "The aggregate status of the containers in this pod.",
                priority: 0,
                cell: |o| json!(s(&o["status"]["phase"])),
            },
            Column {
                name: "Restarts",
                description: "The number of times the containers in this pod have been restarted.",
                priority: 0,
                cell: |_| json!("0"),
            },
        ],
        ("", "Service") => vec![
            Column {
                name: "Type",
                description: "The type of the service.",
                priority: 0,
                cell: |o| json!(s(&o["spec"]["type"])),
            },
            Column {
                name: "Cluster-IP",
                description: "The IP address of the service.",
                priority: 0,
                cell: |o| json!(s(&o["spec"]["clusterIP"])),
            },
            Column {
                name: "External-IP",
                description: "The external IP address of the service.",
                priority: 0,
                cell: |o| {
                    let ips: Vec<String> = o["status"]["loadBalancer"]["ingress"]
                        .as_array()
                        .map(|i| i.iter().map(|x| s(&x["ip"])).collect())
                        .unwrap_or_default();
                    json!(if ips.is_empty() {
                        "<none>".to_string()
                    } else {
                        ips.join(",")
                    })
                },
            },
            Column {
                name: "Port(s)",
                description: "The ports exposed by the service.",
                priority: 0,
                cell: |o| {
                    let ports: Vec<String> = o["spec"]["ports"]
                        .as_array()
                        .map(|p| {
                            p.iter()
                                .map(|x| format!("{}/{}", x["port"], s(&x["protocol"])))
                                .collect()
                        })
                        .unwrap_or_default();
                    json!(if ports.is_empty() {
                        "<none>".to_string()
                    } else {
                        ports.join(",")
                    })
                },
            },
        ],
        ("", "ConfigMap") => vec![Column {
            name: "Data",
            description: "Number of keys in the config map.",
            priority: 0,
            cell: |o| {
                json!(
                    o["data"].as_object().map(|m| m.len()).unwrap_or(0)
                        + o["binaryData"].as_object().map(|m| m.len()).unwrap_or(0)
                )
            },
        }],
        ("", "Secret") => vec![
            Column {
                name: "Type",
                description: "The type of the secret.",
                priority: 0,
                cell: |o| json!(s(&o["type"])),
            },
            Column {
                name: "Data",
                description: "Number of keys in the secret.",
                priority: 0,
                cell: |o| json!(o["data"].as_object().map(|m| m.len()).unwrap_or(0)),
            },
        ],
        ("", "Namespace") => vec![Column {
            name: "Status",
            description: "The status of the namespace",
            priority: 0,
            cell: |o| json!(s(&o["status"]["phase"])),
        }],
        ("", "PersistentVolumeClaim") => vec![Column {
            name: "Status",
            description: "The phase of the claim.",
            priority: 0,
            cell: |o| json!(s(&o["status"]["phase"])),
        }],
        ("batch", "Job") => vec![
            Column {
                name: "Status",
                description: "Status of the job.",
                priority: 0,
                cell: |o| {
                    let conds = o["status"]["conditions"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    let has = |t: &str| {
                        conds
                            .iter()
                            .any(|c| c["type"] == t && c["status"] == "True")
                    };
                    json!(if has("Complete") {
                        "Complete"
                    } else if has("Failed") {
                        "Failed"
                    } else {
                        "Running"
                    })
                },
            },
            Column {
                name: "Completions",
                description: "The desired number of successfully finished pods the job should be run with.",
                priority: 0,
                cell: |o| {
                    json!(format!(
                        "{}/{}",
                        count(&o["status"]["succeeded"]),
                        o["spec"]["completions"].as_i64().unwrap_or(1)
                    ))
                },
            },
        ],
        ("batch", "CronJob") => vec![
            Column {
                name: "Schedule",
                description: "The schedule in Cron format.",
                priority: 0,
                cell: |o| json!(s(&o["spec"]["schedule"])),
            },
            Column {
                name: "Suspend",
                description: "Whether the cron job is suspended.",
                priority: 0,
                cell: |o| json!(s(&o["spec"]["suspend"])),
            },
        ],
        _ => Vec::new(),
    }
}

/// Age as kubectl prints it (`3m12s`, `5h`, `2d3h`).
pub fn human_age(seconds: i64) -> String {
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if days < 365 * 8 {
        let d = days % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

fn evaluate_json_path(obj: &Value, path: &str) -> Value {
    let mut cur = obj;
    for seg in path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
    {
        cur = &cur[seg];
    }
    cur.clone()
}

/// A Table of `objects`; `with_columns` controls whether column definitions are included
/// (only the first event of a watch carries them).
pub fn table(rt: &ResourceType, objects: &[Value], with_columns: bool, rv: Option<u64>) -> Value {
    let builtin = builtin_columns(rt);
    let now = clock::parse_rfc3339(&clock::now_rfc3339()).unwrap_or(0);
    let mut definitions = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    for c in &builtin {
        definitions.push(json!({"name": c.name, "type": "string", "format": "", "description": c.description, "priority": c.priority}));
    }
    let custom: Vec<&Value> = rt.printer_columns.iter().collect();
    let custom_has_age = custom.iter().any(|c| c["name"] == "Age");
    for c in &custom {
        definitions.push(json!({"name": c["name"], "type": c["type"].as_str().unwrap_or("string"), "format": c["format"].as_str().unwrap_or(""),
            "description": c["description"].as_str().unwrap_or(""), "priority": c["priority"].as_i64().unwrap_or(0)}));
    }
    if !custom_has_age {
        definitions.push(json!({"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let age = clock::parse_rfc3339(o["metadata"]["creationTimestamp"].as_str().unwrap_or_default())
                .map(|t| human_age(now - t))
                .unwrap_or_else(|| "<unknown>".into());
            let mut cells = vec![o["metadata"]["name"].clone()];
            cells.extend(builtin.iter().map(|c| (c.cell)(o)));
            for c in &custom {
                let path = c["jsonPath"].as_str().unwrap_or_default();
                if c["type"] == "date" {
                    let v = evaluate_json_path(o, path);
                    cells.push(json!(v.as_str().and_then(clock::parse_rfc3339).map(|t| human_age(now - t)).unwrap_or_default()));
                } else {
                    cells.push(evaluate_json_path(o, path));
                }
            }
            if !custom_has_age {
                cells.push(json!(age));
            }
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})
        })
        .collect();
    let mut meta = json!({});
    if let Some(rv) = rv {
        meta["resourceVersion"] = json!(rv.to_string());
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": if with_columns { Value::Array(definitions) } else { Value::Null },
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::human_age;

    #[test]
    fn ages_match_kubectl() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(192), "3m12s");
        assert_eq!(human_age(600), "10m");
        assert_eq!(human_age(3 * 3600 + 60), "3h1m");
        assert_eq!(human_age(50 * 3600), "2d2h");
    }
}
