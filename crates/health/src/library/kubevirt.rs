//! KubeVirt (`kubevirt.io`). A VirtualMachine by the status it prints (`printableStatus`),
//! read against what its spec asks: stopped because the spec says so (`running: false`,
//! `runStrategy: Halted`) is where it should be — Healthy, as Argo CD now reports it — while a
//! VM stopped otherwise (a `Manual` run strategy) waits for someone to start it. A
//! VirtualMachineInstance, the running VM, by its phase.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing, Suspended};

use super::{condition_message, conditions, find, text};
use crate::Health;

/// The spec asks for the VM to be off.
fn halted_by_spec(v: &Value) -> bool {
    v.pointer("/spec/running").and_then(Value::as_bool) == Some(false)
        || text(v, "/spec/runStrategy") == "Halted"
}

pub(super) fn virtual_machine(v: &Value) -> Health {
    let state = text(v, "/status/printableStatus");
    if state.is_empty() {
        return if halted_by_spec(v) {
            Health::new(Healthy, "stopped, as the spec asks")
        } else {
            Health::new(Progressing, "waiting for KubeVirt to report on the VM")
        };
    }
    let status = match state {
        "Running" => Healthy,
        "Stopped" if halted_by_spec(v) => Healthy,
        "Stopped" | "Paused" => Suspended,
        "Provisioning"
        | "Starting"
        | "Stopping"
        | "Terminating"
        | "Migrating"
        | "WaitingForVolumeBinding"
        | "WaitingForReceiver" => Progressing,
        // ErrorUnschedulable, ErrImagePull, CrashLoopBackOff, DataVolumeError, …
        _ => Degraded,
    };
    Health::new(status, state)
}

/// A VirtualMachineInstance: paused by a user Suspended; by phase — Running Healthy, Succeeded
/// (the guest shut down) Suspended, Failed Degraded, Pending/Scheduling/Scheduled Progressing.
pub(super) fn instance(v: &Value) -> Health {
    if find(conditions(v), "Paused").is_some_and(|c| text(c, "/status") == "True") {
        return Health::new(Suspended, condition_message(v, "Paused"));
    }
    let phase = text(v, "/status/phase");
    match phase {
        "Running" => Health::new(Healthy, phase),
        "Succeeded" => Health::new(Suspended, phase),
        "Failed" => Health::new(
            Degraded,
            crate::message_or(condition_message(v, "Ready"), phase),
        ),
        "" => Health::new(Progressing, "waiting for KubeVirt to schedule the VM"),
        _ => Health::new(Progressing, phase),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_vm_stopped_on_purpose_is_healthy() {
        let vm =
            |spec: Value, state: &str| json!({"spec": spec, "status": {"printableStatus": state}});
        assert_eq!(
            virtual_machine(&vm(json!({"running": false}), "Stopped")).status,
            Healthy
        );
        assert_eq!(
            virtual_machine(&vm(json!({"runStrategy": "Halted"}), "Stopped")).status,
            Healthy
        );
        assert_eq!(
            virtual_machine(&vm(json!({"runStrategy": "Manual"}), "Stopped")).status,
            Suspended
        );
        assert_eq!(
            virtual_machine(&vm(json!({"running": true}), "Running")).status,
            Healthy
        );
        assert_eq!(
            virtual_machine(&vm(json!({"running": true}), "ErrorUnschedulable")).status,
            Degraded
        );
        assert_eq!(
            virtual_machine(&json!({"spec": {"running": false}})).status,
            Healthy
        );
        assert_eq!(
            virtual_machine(&json!({"spec": {"running": true}})).status,
            Progressing
        );
    }

    #[test]
    fn instances_by_phase() {
        let vmi = |phase: &str| json!({"status": {"phase": phase}});
        assert_eq!(instance(&vmi("Running")).status, Healthy);
        assert_eq!(instance(&vmi("Scheduled")).status, Progressing);
        assert_eq!(instance(&vmi("Succeeded")).status, Suspended);
        assert_eq!(instance(&vmi("Failed")).status, Degraded);
        assert_eq!(instance(&json!({})).status, Progressing);
        let paused = json!({"status": {"phase": "Running", "conditions": [{"type": "Paused", "status": "True", "message": "paused by user"}]}});
        assert_eq!(instance(&paused).status, Suspended);
    }
}
