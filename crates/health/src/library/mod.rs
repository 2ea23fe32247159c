//! Tiphys's health library for custom resources: what an Argo CD user gets from Argo's bundled
//! scripts, written here from the projects' documented status conventions. A few kinds need
//! their own rule; every other custom resource gets the generic one, which reads the
//! conventions most controllers follow (kstatus, and the `Ready`/`Available`/`Synced`
//! condition types), and gives no health when an object follows none of them.
//!
//! argocd-cm scripts and the built-in checks come first; argocd-cm's
//! `tiphys.health.library.disabled` (group/Kind globs) turns the library off per kind.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{
    Degraded, Healthy, Progressing, Suspended, Unknown,
};

use crate::{Health, text};

mod astra;
mod confluent;
mod flagger;
mod flink;
mod gateway_api;
mod humio;
mod karmada;
mod kruise;
mod kserve;
mod kubevirt;
mod mariadb;
mod numaflow;
mod ocm;
mod opentelemetry;
mod rollout;
mod spark;
mod three_scale;
mod velero;

/// Which rule decided, for `tiphys health` and docs/health.md.
pub type Rule = &'static str;

/// The library's health of `live`, with the rule that decided it.
pub fn library(group: &str, kind: &str, live: &Value) -> Option<(Health, Rule)> {
    match (group, kind) {
        ("argoproj.io", "Rollout") => Some((rollout::rollout(live), "Argo Rollouts Rollout")),
        ("argoproj.io", "ApplicationSet") if live.get("status").is_some() => {
            Some((application_set(live), "Argo CD ApplicationSet conditions"))
        }
        ("route.openshift.io", "Route") => {
            Some((route_admission(live), "OpenShift Route admission"))
        }
        (group, _) if group.ends_with(".k8s.elastic.co") => {
            Some((elastic(live), "Elastic (ECK) health and phase"))
        }
        ("argoproj.io", "CronWorkflow") => {
            Some((cron_workflow(live), "Argo Workflows CronWorkflow"))
        }
        ("argoproj.io", "AnalysisRun" | "Experiment") if live.get("status").is_some() => {
            Some((analysis(live), "Argo Rollouts analysis phase"))
        }
        ("gateway.networking.k8s.io", kind)
            if let Some(health) = gateway_api::health(kind, live) =>
        {
            Some((
                health,
                "Gateway API: conditions per parent, ancestor or listener",
            ))
        }
        (group, _) if group.ends_with(".toolkit.fluxcd.io") && suspended_by_spec(live) => Some((
            Health::new(Suspended, "reconciliation is suspended (spec.suspend)"),
            "Flux: spec.suspend",
        )),
        ("source.toolkit.fluxcd.io", "HelmRepository")
            if text(live, "/spec/type") == "oci" && conditions(live).is_empty() =>
        {
            // Flux does not reconcile OCI Helm repositories: their status stays empty.
            Some((
                Health::new(Healthy, "OCI Helm repositories report no status"),
                "Flux: OCI HelmRepository",
            ))
        }
        ("keda.sh", "ScaledObject" | "ScaledJob") if keda_paused(live) => Some((
            Health::new(Suspended, "autoscaling is paused"),
            "KEDA: paused annotation",
        )),
        ("keda.sh", "ScaledObject" | "ScaledJob")
            if find(conditions(live), "Fallback").is_some_and(|c| text(c, "/status") == "True") =>
        {
            Some((
                Health::new(Degraded, condition_message(live, "Fallback")),
                "KEDA: Fallback condition",
            ))
        }
        ("kubevirt.io", "VirtualMachine") => Some((
            kubevirt::virtual_machine(live),
            "KubeVirt: printableStatus against the run strategy",
        )),
        ("kubevirt.io", "VirtualMachineInstance") => {
            Some((kubevirt::instance(live), "KubeVirt: instance phase"))
        }
        ("cdi.kubevirt.io", "DataVolume") if live.get("status").is_some() => {
            Some((data_volume(live), "KubeVirt CDI DataVolume phase"))
        }
        ("postgresql.cnpg.io", "Cluster") if live.get("status").is_some() => {
            Some((postgres_cluster(live), "CloudNativePG: hibernation, phase"))
        }
        ("external-secrets.io", "ExternalSecret") if refreshed_before_creation(live) => Some((
            Health::new(
                Progressing,
                "waiting for the secret to be refreshed (refreshPolicy OnChange)",
            ),
            "External Secrets: OnChange not refreshed since creation",
        )),
        ("cert-manager.io", "Certificate") if certificate_issuing(live) => Some((
            Health::new(Progressing, issuing_message(live)),
            "cert-manager: issuing",
        )),
        ("core.cnrm.cloud.google.com", "ConfigConnector" | "ConfigConnectorContext") => Some((
            config_connector(kind, live),
            "Config Connector: status.healthy",
        )),
        (group, _) if group.ends_with(".cnrm.cloud.google.com") && live.get("status").is_some() => {
            cnrm(live)
                .map(|h| (h, "Config Connector: Ready condition reason"))
                .or_else(|| generic(live))
        }
        (group, _) if group.ends_with(".services.k8s.aws") && live.get("status").is_some() => {
            Some((
                ack(live),
                "AWS Controllers for Kubernetes: ACK.Terminal, Ready",
            ))
        }
        ("addons.cluster.x-k8s.io", "ClusterResourceSet") if live.get("status").is_some() => {
            let applied = find(conditions(live), "ResourcesApplied");
            let health = match applied.map(|c| text(c, "/status")) {
                Some("True") => Health::new(Healthy, "resources applied"),
                Some("False") => Health::new(Degraded, condition_message(live, "ResourcesApplied")),
                _ => Health::new(Progressing, "applying the resources"),
            };
            Some((health, "Cluster API ClusterResourceSet: ResourcesApplied"))
        }
        ("cluster.x-k8s.io", "Cluster") if live.get("status").is_some() => {
            Some((capi_cluster(live), "Cluster API Cluster: phase, conditions"))
        }
        ("controlplane.cluster.x-k8s.io", "KubeadmControlPlane") => Some((
            kubeadm_control_plane(live),
            "Cluster API KubeadmControlPlane: etcd, components, machines, replicas",
        )),
        (
            "controlplane.cluster.x-k8s.io"
            | "infrastructure.cluster.x-k8s.io"
            | "bootstrap.cluster.x-k8s.io",
            _,
        ) if live.get("status").is_some() => Some((
            capi_provider(live),
            "Cluster API provider: failure, severity Error, Ready",
        )),
        ("apps.openshift.io", "DeploymentConfig") if live.get("status").is_some() => Some((
            deployment_config(live),
            "OpenShift DeploymentConfig: Progressing reason, Available",
        )),
        ("operators.coreos.com", "Subscription") => Some((
            olm_subscription(live),
            "Operator Lifecycle Manager Subscription conditions",
        )),
        ("minio.min.io", "Tenant") => Some((minio_tenant(live), "MinIO Tenant: currentState")),
        ("k8s.keycloak.org", "Keycloak") => {
            Some((keycloak(live), "Keycloak operator: HasErrors, Ready"))
        }
        ("rabbitmq.com", "RabbitmqCluster") => Some((
            rabbitmq_cluster(live),
            "RabbitMQ cluster operator conditions",
        )),
        ("rabbitmq.com", _) => Some((
            rabbitmq_topology(live),
            "RabbitMQ messaging topology: Ready condition",
        )),
        ("acid.zalan.do", "postgresql") => Some((
            zalando_postgres(live),
            "Zalando postgres-operator: PostgresClusterStatus",
        )),
        ("apps.kruise.io", kind) if let Some(health) = kruise::health(kind, live) => {
            Some((health, "OpenKruise: pause, partition, updated replicas"))
        }
        ("capabilities.3scale.net", kind) => Some((
            three_scale::health(kind, live),
            "3scale capabilities: Failed, Invalid, Orphan, Synced, Ready",
        )),
        ("astra.netapp.io", kind) => {
            Some((astra::health(kind, live), "NetApp Astra: state, Ready"))
        }
        ("velero.io", kind) if let Some(health) = velero::health(kind, live) => {
            Some((health, "Velero: phase"))
        }
        ("serving.kserve.io", "InferenceService" | "LLMInferenceService") => kserve::health(live),
        ("policy.open-cluster-management.io", kind)
            if let Some(health) = ocm::health(kind, live) =>
        {
            Some((health, "Open Cluster Management policy compliance"))
        }
        ("flink.apache.org", kind) if let Some(health) = flink::health(kind, live) => {
            Some((health, "Apache Flink operator: reconciliation, job state"))
        }
        ("work.karmada.io", "ResourceBinding" | "ClusterResourceBinding") => Some((
            karmada::binding(live),
            "Karmada binding: placement, member clusters' reports",
        )),
        ("k8s.mariadb.com", kind) => Some((
            mariadb::health(kind, live),
            "MariaDB operator: Complete, Ready reason",
        )),
        ("opentelemetry.io", "OpenTelemetryCollector") => opentelemetry::collector(live),
        ("core.humio.com", kind) => Some((humio::health(kind, live), "Humio operator: state")),
        ("apps.3scale.net", "APIManager") => Some((
            three_scale::api_manager(live),
            "3scale APIManager: Available",
        )),
        ("sparkoperator.k8s.io", "SparkApplication") => Some((
            spark::application(live),
            "Spark operator: application state, executors",
        )),
        ("autoscaling.k8s.io", "VerticalPodAutoscaler") => Some((
            vertical_pod_autoscaler(live),
            "VerticalPodAutoscaler: NoPodsMatched, recommendation",
        )),
        ("operator.knative.dev", _) if live.get("status").is_some() => {
            Some((knative_operator(live), "Knative operator: Ready"))
        }
        (
            "monitoring.coreos.com",
            "Prometheus" | "Alertmanager" | "PrometheusAgent" | "ThanosRuler",
        ) if find(conditions(live), "Available").is_some() => {
            Some((prometheus_operator(live), "Prometheus operator: Available"))
        }
        ("networking.gke.io", "ManagedCertificate") => Some((
            managed_certificate(live),
            "GKE ManagedCertificate: domain status",
        )),
        ("secrets.hashicorp.com", "VaultStaticSecret") => Some((
            vault_static_secret(live),
            "Vault Secrets Operator: secret found",
        )),
        ("numaflow.numaproj.io", kind) => Some((
            numaflow::health(kind, live),
            "Numaflow: progressive result, phase, conditions",
        )),
        ("operator.openshift.io" | "config.openshift.io", _)
            if ["Available", "Progressing", "Degraded"]
                .iter()
                .any(|kind| find(conditions(live), kind).is_some())
                || (kind == "IngressController" && live.get("status").is_some()) =>
        {
            Some((
                openshift_operator(live),
                "OpenShift operator conditions: Degraded, Progressing, Available",
            ))
        }
        ("flagger.app", "Canary") => Some((flagger::canary(live), "Flagger Canary phase")),
        ("platform.confluent.io", "Connector") => Some((
            confluent::connector(live),
            "Confluent Connector: failed tasks, connector state",
        )),
        (group, kind) if crossplane(group) && crossplane_configuration(kind) => {
            generic(live).or(Some((
                Health::new(Healthy, "configuration has no status to wait for"),
                "Crossplane: configuration kind",
            )))
        }
        (group, kind) => generic(live).or_else(|| {
            // Only while the controller has reported nothing: a status in some other shape
            // than the conventions is no health, not Progressing forever.
            (publishes_status(group) && reported_nothing(live)).then(|| {
                (
                    Health::new(Progressing, format!("waiting for the {kind} controller")),
                    "controller has not reported yet",
                )
            })
        }),
    }
}

/// A workload of the Prometheus operator by its `Available` condition: True Healthy; some pods
/// not ready yet (status `Degraded`, or False with reason SomePodsNotReady) Progressing; none
/// ready (False) Degraded.
fn prometheus_operator(v: &Value) -> Health {
    let Some(available) = find(conditions(v), "Available") else {
        return Health::new(Progressing, "waiting for the Prometheus operator");
    };
    let message = crate::message_or(
        text(available, "/message").to_string(),
        text(available, "/reason"),
    );
    match (text(available, "/status"), text(available, "/reason")) {
        ("True", _) => Health::new(Healthy, "all instances are available"),
        ("Degraded", _) | ("False", "SomePodsNotReady") => Health::new(Progressing, message),
        ("False", _) => Health::new(Degraded, message),
        _ => Health::new(Progressing, message),
    }
}

/// A Vault Secrets Operator VaultStaticSecret: the operator records the synced secret's
/// `secretMAC`; a status without one means it could not authenticate or find the secret.
fn vault_static_secret(v: &Value) -> Health {
    if v.get("status").is_none() {
        return Health::new(Progressing, "waiting for the Vault Secrets Operator");
    }
    if text(v, "/status/secretMAC").is_empty() {
        return Health::new(
            Degraded,
            "the secret was not synced: Vault refused the authentication or has no such secret (see the events)",
        );
    }
    Health::new(Healthy, "secret synced from Vault")
}

/// The Knative operator's KnativeServing/KnativeEventing: `Ready` False while the operator
/// installs or upgrades (its other conditions say which step), so only True decides; a status
/// outside True/False/Unknown is Degraded.
fn knative_operator(v: &Value) -> Health {
    match find(conditions(v), "Ready").map(|c| text(c, "/status")) {
        Some("True") => Health::new(Healthy, "Knative is installed and ready"),
        None | Some("False" | "Unknown") => {
            let pending: Vec<&str> = conditions(v)
                .iter()
                .filter(|c| text(c, "/status") != "True")
                .map(|c| text(c, "/type"))
                .collect();
            Health::new(Progressing, format!("waiting for: {}", pending.join(", ")))
        }
        Some(other) => Health::new(Degraded, format!("Ready is {other}")),
    }
}

/// An OpenShift operator resource (IngressController, the cluster's config kinds) by the
/// Available/Progressing/Degraded conditions OpenShift's operators write, and its replicas.
fn openshift_operator(v: &Value) -> Health {
    let c = conditions(v);
    let is_true = |kind: &str| find(c, kind).is_some_and(|c| text(c, "/status") == "True");
    if is_true("Degraded") {
        return Health::new(Degraded, condition_message(v, "Degraded"));
    }
    if is_true("Progressing") {
        return Health::new(Progressing, condition_message(v, "Progressing"));
    }
    let wanted = v.pointer("/spec/replicas").and_then(Value::as_i64);
    let available = v
        .pointer("/status/availableReplicas")
        .and_then(Value::as_i64);
    if let (Some(wanted), Some(available)) = (wanted, available)
        && available < wanted
    {
        return Health::new(
            Progressing,
            format!("{available}/{wanted} of replicas are available"),
        );
    }
    if is_true("Available") {
        return Health::new(Healthy, "available");
    }
    Health::new(Progressing, "status not known yet")
}

/// A VerticalPodAutoscaler: a selector that matches no pods (or a config the recommender
/// refused) is Degraded; a recommendation provided Healthy; until then Progressing.
fn vertical_pod_autoscaler(v: &Value) -> Health {
    let c = conditions(v);
    let is_true = |kind: &str| find(c, kind).filter(|c| text(c, "/status") == "True");
    if let Some(problem) = is_true("NoPodsMatched").or_else(|| is_true("ConfigUnsupported")) {
        return Health::new(Degraded, text(problem, "/message"));
    }
    if is_true("RecommendationProvided").is_some() {
        return Health::new(Healthy, "recommendation provided");
    }
    Health::new(Progressing, "waiting for a recommendation")
}

/// An ApplicationSet by the conditions its controller writes: an error is Degraded, a
/// progressive rollout or applications not yet up to date Progressing, up to date Healthy.
fn application_set(v: &Value) -> Health {
    let c = conditions(v);
    let is = |kind: &str, status: &str| find(c, kind).is_some_and(|x| text(x, "/status") == status);
    if is("ErrorOccurred", "True") {
        return Health::new(Degraded, condition_message(v, "ErrorOccurred"));
    }
    if is("RolloutProgressing", "True") {
        return Health::new(Progressing, condition_message(v, "RolloutProgressing"));
    }
    if is("ResourcesUpToDate", "True") {
        return Health::new(Healthy, condition_message(v, "ResourcesUpToDate"));
    }
    let message = condition_message(v, "ResourcesUpToDate");
    Health::new(
        Progressing,
        crate::message_or(message, "waiting for the ApplicationSet controller"),
    )
}

/// An OpenShift Route by each router's `Admitted` condition: refused by one is Degraded,
/// admitted by all Healthy, otherwise still being admitted.
fn route_admission(v: &Value) -> Health {
    let admitted: Vec<&str> = v
        .pointer("/status/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|ingress| {
            ingress
                .get("conditions")
                .and_then(Value::as_array)
                .and_then(|c| find(c, "Admitted"))
                .map_or("", |c| text(c, "/status"))
        })
        .collect();
    if admitted.contains(&"False") {
        Health::new(Degraded, "a router refused the route")
    } else if !admitted.is_empty() && admitted.iter().all(|s| *s == "True") {
        Health::new(Healthy, "")
    } else {
        Health::new(Progressing, "waiting for the routers to admit the route")
    }
}

/// An Elastic Cloud on Kubernetes resource (Elasticsearch, Kibana, …): an invalid spec is
/// Degraded, applying changes or migrating data Progressing, fewer nodes available than
/// asked for Progressing, then the cluster colour — green Healthy, yellow or red Degraded;
/// no colour reported at all is Unknown, as the operator always reports one.
fn elastic(v: &Value) -> Health {
    let phase = text(v, "/status/phase");
    match phase {
        "Invalid" => return Health::new(Degraded, format!("phase is {phase}")),
        "ApplyingChanges" | "MigratingData" => {
            return Health::new(Progressing, format!("phase is {phase}"));
        }
        _ => {}
    }
    let wanted: i64 = v
        .pointer("/spec/nodeSets")
        .and_then(Value::as_array)
        .map(|sets| sets.iter().filter_map(|s| s["count"].as_i64()).sum())
        .unwrap_or(0);
    let available = v.pointer("/status/availableNodes").and_then(Value::as_i64);
    if let Some(available) = available
        && available < wanted
    {
        return Health::new(
            Progressing,
            format!("{available} of {wanted} nodes available"),
        );
    }
    match text(v, "/status/health") {
        "green" => Health::new(Healthy, "health is green"),
        colour @ ("yellow" | "red") => Health::new(Degraded, format!("health is {colour}")),
        _ => Health::new(Unknown, "the operator has not reported a health yet"),
    }
}

/// An Argo Rollouts AnalysisRun or Experiment by its phase: Successful is Healthy, Failed and
/// Error Degraded, Inconclusive Unknown (a person has to look), anything else still running.
fn analysis(v: &Value) -> Health {
    let message = text(v, "/status/message").to_string();
    let status = match text(v, "/status/phase") {
        "Successful" => Healthy,
        "Failed" | "Error" => Degraded,
        "Inconclusive" => Unknown,
        _ => Progressing,
    };
    Health::new(status, message)
}

/// A KubeVirt CDI DataVolume by its phase (`Ready` stays False for the whole import, so it
/// says nothing): Succeeded is Healthy, Failed or an erroring transfer pod Degraded, Paused
/// Suspended, any other phase (scheduled, importing, cloning, uploading…) Progressing.
fn data_volume(v: &Value) -> Health {
    let phase = text(v, "/status/phase");
    let running = find(conditions(v), "Running");
    if phase == "Failed"
        || running.is_some_and(|c| text(c, "/status") == "False" && text(c, "/reason") == "Error")
    {
        let message = running.map(|c| text(c, "/message")).unwrap_or_default();
        return Health::new(Degraded, if message.is_empty() { phase } else { message });
    }
    let status = match phase {
        "Succeeded" => Healthy,
        "Paused" => Suspended,
        _ => Progressing,
    };
    Health::new(status, phase)
}

/// A CloudNativePG Cluster: hibernated or with reconciliation disabled is Suspended; else its
/// phase — "Cluster in healthy state" is Healthy, a failover or a failure Degraded, any other
/// phase (setting up, upgrading, switching over…) Progressing.
fn postgres_cluster(v: &Value) -> Health {
    let annotation = |k: &str| {
        text(
            v,
            &format!("/metadata/annotations/{}", k.replace('/', "~1")),
        )
    };
    if annotation("cnpg.io/hibernation") == "on"
        || find(conditions(v), "cnpg.io/hibernation").is_some_and(|c| text(c, "/status") == "True")
    {
        return Health::new(Suspended, "Cluster has been hibernated");
    }
    if annotation("cnpg.io/reconciliation") == "disabled" {
        return Health::new(Suspended, "Cluster reconciliation is suspended");
    }
    let phase = text(v, "/status/phase");
    let reason = text(v, "/status/phaseReason");
    let message = if reason.is_empty() { phase } else { reason };
    let lower = phase.to_ascii_lowercase();
    if phase == "Cluster in healthy state" {
        Health::new(Healthy, "")
    } else if lower.contains("failing over")
        || lower.contains("unable")
        || lower.contains("cannot")
        || lower.contains("failed")
        || lower.contains("error")
    {
        Health::new(Degraded, message)
    } else {
        Health::new(Progressing, message)
    }
}

/// Config Connector's operator objects: the generation observed, then `status.healthy`.
fn config_connector(kind: &str, v: &Value) -> Health {
    if let Some((h, _)) = generic_generation(v) {
        return h;
    }
    match v.pointer("/status/healthy").and_then(Value::as_bool) {
        Some(true) => Health::new(Healthy, format!("{kind} is healthy")),
        Some(false) => Health::new(Degraded, format!("{kind} is not healthy")),
        None => Health::new(Progressing, format!("waiting for the {kind} controller")),
    }
}

/// A Config Connector resource: its `Ready` condition, read by reason when False — a
/// dependency that is not ready yet leaves it waiting (Suspended, as Argo CD shows it), an
/// update under way is Progressing, anything else (a missing dependency, a failed update)
/// Degraded. None without a Ready condition (the generic rule then decides).
fn cnrm(v: &Value) -> Option<Health> {
    if let Some((h, _)) = generic_generation(v) {
        return Some(h);
    }
    let ready = find(conditions(v), "Ready")?;
    let message = text(ready, "/message").to_string();
    Some(match (text(ready, "/status"), text(ready, "/reason")) {
        ("True", _) => Health::new(Healthy, message),
        ("False", "DependencyNotReady") => Health::new(Suspended, message),
        ("False", "Updating") => Health::new(Progressing, message),
        ("False", _) => Health::new(Degraded, message),
        _ => Health::new(Progressing, message),
    })
}

/// An ACK resource: `ACK.Terminal` True is Degraded (the controller gave up); `Ready` True
/// Healthy; anything else — Ready False while the cloud resource is created, no conditions
/// yet — is on its way.
fn ack(v: &Value) -> Health {
    let c = conditions(v);
    if let Some(terminal) = find(c, "ACK.Terminal")
        && text(terminal, "/status") == "True"
    {
        return Health::new(Degraded, text(terminal, "/message"));
    }
    match find(c, "Ready") {
        Some(ready) if text(ready, "/status") == "True" => {
            Health::new(Healthy, text(ready, "/message"))
        }
        Some(ready) => Health::new(Progressing, text(ready, "/message")),
        None => Health::new(Progressing, "waiting for the resource to be ready"),
    }
}

/// A CronWorkflow is a schedule: nothing to wait for. A spec the controller refused or a
/// workflow it could not submit (`SpecError`/`SubmissionError` True) is Degraded; a suspended
/// schedule (`spec.suspend`) Suspended; otherwise Healthy.
fn cron_workflow(v: &Value) -> Health {
    let c = conditions(v);
    for kind in ["SpecError", "SubmissionError"] {
        if let Some(failed) = find(c, kind).filter(|x| text(x, "/status") == "True") {
            return Health::new(Degraded, text(failed, "/message"));
        }
    }
    if suspended_by_spec(v) {
        return Health::new(Suspended, "the schedule is suspended (spec.suspend)");
    }
    Health::new(Healthy, "CronWorkflow is healthy")
}

/// An ExternalSecret refreshed only when it changes (`refreshPolicy: OnChange`) whose last
/// refresh is older than the object itself: its status is left from before (a recreated
/// object), and it has not fetched its secret yet.
fn refreshed_before_creation(v: &Value) -> bool {
    let time = |pointer: &str| {
        text(v, pointer)
            .parse::<k8s_openapi::jiff::Timestamp>()
            .ok()
    };
    text(v, "/spec/refreshPolicy") == "OnChange"
        && matches!(
            (time("/status/refreshTime"), time("/metadata/creationTimestamp")),
            (Some(refreshed), Some(created)) if refreshed < created
        )
}

/// A Cluster API object's conditions: `status.conditions` and, on a v1beta1 object, v1beta2's
/// in `status.v1beta2.conditions`.
fn capi_conditions(v: &Value) -> Vec<&Value> {
    conditions(v)
        .iter()
        .chain(
            v.pointer("/status/v1beta2/conditions")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
        .collect()
}

/// A KubeadmControlPlane: an unhealthy etcd is Degraded (before anything else: it is what
/// loses the cluster); unhealthy components, machines not ready or not up to date, a rollout,
/// or fewer updated or ready replicas than asked for are Progressing; else Healthy.
fn kubeadm_control_plane(v: &Value) -> Health {
    if v.get("status").is_none() {
        return Health::new(
            Progressing,
            "waiting for the KubeadmControlPlane controller",
        );
    }
    let all = capi_conditions(v);
    let state = |kind: &str| {
        all.iter()
            .find(|c| text(c, "/type") == kind)
            .map(|c| text(c, "/status"))
    };
    if state("EtcdClusterHealthy") == Some("False") {
        return Health::new(Degraded, "etcd cluster is unhealthy");
    }
    if state("ControlPlaneComponentsHealthy") == Some("False") {
        return Health::new(Progressing, "control plane components unhealthy");
    }
    if state("MachinesReady").is_some_and(|s| s != "True") {
        return Health::new(Progressing, "machines not ready");
    }
    if state("MachinesUpToDate") == Some("False") {
        return Health::new(Progressing, "updating machines");
    }
    if state("RollingOut") == Some("True") {
        return Health::new(Progressing, "rolling out");
    }
    let count = |pointer: &str| v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
    let desired = count("/spec/replicas");
    let updated = count("/status/updatedReplicas");
    let ready = count("/status/readyReplicas");
    if updated < desired {
        return Health::new(
            Progressing,
            format!("updating: {updated}/{desired} updated, {ready} ready"),
        );
    }
    if ready != desired {
        return Health::new(Progressing, format!("{ready}/{desired} ready"));
    }
    Health::new(Healthy, "control plane is healthy")
}

/// An object of a Cluster API provider (an EKS control plane, an infrastructure cluster or
/// machine, a bootstrap config), by the contract providers follow: a `failureMessage` or a
/// condition False with severity Error is Degraded; a spec not yet observed, a condition
/// saying it is creating or updating, or not ready yet (`Ready=False` without an error,
/// `status.ready: false`) is Progressing; ready is Healthy.
fn capi_provider(v: &Value) -> Health {
    let failure = text(v, "/status/failureMessage");
    if !failure.is_empty() {
        return Health::new(Degraded, failure);
    }
    let all = capi_conditions(v);
    let errors: Vec<&&Value> = all
        .iter()
        .filter(|c| text(c, "/status") == "False" && text(c, "/severity") == "Error")
        .collect();
    if !errors.is_empty() {
        let messages: Vec<&str> = errors
            .iter()
            .map(|c| text(c, "/message"))
            .filter(|m| !m.is_empty())
            .collect();
        return Health::new(Degraded, messages.join("; "));
    }
    if let Some((h, _)) = generic_generation(v) {
        return h;
    }
    if let Some(busy) = all.iter().find(|c| {
        let kind = text(c, "/type");
        text(c, "/status") == "True" && (kind.ends_with("Updating") || kind.ends_with("Creating"))
    }) {
        return Health::new(Progressing, text(busy, "/type"));
    }
    let ready = all.iter().find(|c| text(c, "/type") == "Ready");
    match (
        ready.map(|c| text(c, "/status")),
        v.pointer("/status/ready"),
    ) {
        (Some("True"), _) => Health::new(Healthy, "ready"),
        (Some(_), _) => Health::new(Progressing, "not ready yet"),
        (None, Some(Value::Bool(true))) => Health::new(Healthy, "ready"),
        _ => Health::new(Progressing, "not ready yet"),
    }
}

/// A Cluster API Cluster. Its conditions are in `status.conditions`, and for a v1beta1 object
/// also (in v1beta2's terms) in `status.v1beta2.conditions`: both are read. Paused is
/// Suspended; phase Failed, or `Ready=False` with severity Error, Degraded; phase Pending,
/// Provisioning or Deleting Progressing; a topology not yet reconciled (an upgrade on hold)
/// or machines rolling out Progressing with the controller's message; `Ready` or `Available`
/// True Healthy; anything else is on its way.
fn capi_cluster(v: &Value) -> Health {
    let both = capi_conditions(v);
    let with = |kind: &str, status: &str| {
        both.iter()
            .find(|c| text(c, "/type") == kind && text(c, "/status") == status)
            .copied()
    };
    if suspended_by_spec_paused(v) || with("Paused", "True").is_some() {
        return Health::new(Suspended, "Cluster is paused");
    }
    let failure = text(v, "/status/failureMessage");
    if !failure.is_empty() {
        return Health::new(Degraded, failure);
    }
    let phase = text(v, "/status/phase");
    let ready_failed = with("Ready", "False");
    if phase == "Failed" {
        return Health::new(
            Degraded,
            ready_failed.map_or("Cluster failed", |c| text(c, "/message")),
        );
    }
    if let Some(c) = ready_failed.filter(|c| text(c, "/severity") == "Error") {
        return Health::new(Degraded, text(c, "/message"));
    }
    if matches!(phase, "Pending" | "Provisioning" | "Deleting") {
        return Health::new(Progressing, format!("Cluster is {}", phase.to_lowercase()));
    }
    for (kind, status) in [("TopologyReconciled", "False"), ("RollingOut", "True")] {
        if let Some(c) = with(kind, status) {
            return Health::new(Progressing, text(c, "/message"));
        }
    }
    if with("Ready", "True").is_some() || with("Available", "True").is_some() {
        return Health::new(Healthy, "Cluster is running");
    }
    Health::new(Progressing, "waiting for the Cluster")
}

fn suspended_by_spec_paused(v: &Value) -> bool {
    v.pointer("/spec/paused").and_then(Value::as_bool) == Some(true)
}

/// An OpenShift DeploymentConfig, read as a Deployment is: the latest replication controller
/// rolled out (`Progressing` reason NewReplicationControllerAvailable) is Healthy whatever the
/// replica count; a rollout that failed (`Progressing=False`) or no minimum availability while
/// rolling is Degraded; anything else is still rolling out.
fn deployment_config(v: &Value) -> Health {
    if let Some((h, _)) = generic_generation(v) {
        return h;
    }
    let c = conditions(v);
    let progressing = find(c, "Progressing");
    let available = find(c, "Available");
    match (progressing, available) {
        (Some(p), _)
            if text(p, "/status") == "True"
                && text(p, "/reason") == "NewReplicationControllerAvailable" =>
        {
            Health::new(Healthy, text(p, "/message"))
        }
        (Some(p), _) if text(p, "/status") == "False" => Health::new(Degraded, text(p, "/message")),
        (_, Some(a)) if text(a, "/status") == "False" => Health::new(Degraded, text(a, "/message")),
        (Some(p), _) => Health::new(Progressing, text(p, "/message")),
        (None, _) => Health::new(Progressing, "waiting for the rollout to start"),
    }
}

/// An OLM Subscription: an unhealthy catalog, a failed or missing install plan, or a
/// resolution that failed is Degraded; an install plan waiting to be installed is
/// Progressing — unless it waits for a manual approval of an upgrade while an operator
/// version is installed (that one runs; approving is a person's decision); no conditions
/// yet is Progressing; otherwise Healthy.
fn olm_subscription(v: &Value) -> Health {
    let c = conditions(v);
    let is_true = |kind: &str| find(c, kind).filter(|x| text(x, "/status") == "True");
    for kind in [
        "CatalogSourcesUnhealthy",
        "InstallPlanFailed",
        "ResolutionFailed",
    ] {
        if let Some(x) = is_true(kind) {
            return Health::new(Degraded, format!("{kind}: {}", text(x, "/message")));
        }
    }
    if let Some(x) = is_true("InstallPlanMissing")
        .filter(|x| text(x, "/reason") != "ReferencedInstallPlanNotFound")
    {
        return Health::new(
            Degraded,
            format!("InstallPlanMissing: {}", text(x, "/message")),
        );
    }
    if let Some(pending) = is_true("InstallPlanPending") {
        let installed = !text(v, "/status/installedCSV").is_empty();
        if text(pending, "/reason") == "RequiresApproval" && installed {
            return Health::new(Healthy, "an upgrade waits for a manual approval");
        }
        return Health::new(Progressing, "an install plan is pending installation");
    }
    if c.is_empty() {
        return Health::new(Progressing, "waiting for the install plan");
    }
    Health::new(Healthy, "subscribed")
}

/// A MinIO Tenant by the state its operator writes (`status.currentState`): Initialized is
/// Healthy; provisioning, waiting, updating or restarting Progressing; the states the operator
/// cannot get out of by itself Degraded; any other state Unknown. No status yet is Progressing
/// (Argo CD says Missing, which reads as if the object were not there).
fn minio_tenant(v: &Value) -> Health {
    let state = text(v, "/status/currentState");
    let lower = state.to_ascii_lowercase();
    let stuck = [
        "statefulset not controlled by operator",
        "another minio tenant already exists",
        "different versions across minio pools",
    ];
    if state.is_empty() {
        Health::new(Progressing, "waiting for the MinIO operator")
    } else if state == "Initialized" {
        Health::new(Healthy, state)
    } else if ["Provisioning", "Waiting", "Updating", "Restarting"]
        .iter()
        .any(|p| state.starts_with(p))
    {
        Health::new(Progressing, state)
    } else if stuck.iter().any(|s| lower.starts_with(s))
        || ["incorrect", "not allowed", "error", "failed"]
            .iter()
            .any(|w| lower.contains(w))
    {
        Health::new(Degraded, state)
    } else {
        Health::new(Unknown, state)
    }
}

/// A Keycloak server: errors reported (`HasErrors=True`) are Degraded; ready is Healthy; else —
/// starting, rolling an update (`Ready=False` without errors), no status yet — Progressing.
fn keycloak(v: &Value) -> Health {
    let c = conditions(v);
    if let Some(errors) = find(c, "HasErrors").filter(|x| text(x, "/status") == "True") {
        return Health::new(
            Degraded,
            format!("has errors: {}", text(errors, "/message")),
        );
    }
    match find(c, "Ready") {
        Some(r) if text(r, "/status") == "True" => Health::new(Healthy, "ready"),
        _ => Health::new(Progressing, "waiting for Keycloak to be ready"),
    }
}

/// A RabbitmqCluster: a reconcile that failed is Degraded; conditions the operator has not
/// settled yet (Unknown), the cluster not formed or replicas not ready are Progressing, except
/// a cluster scaled to zero on purpose (Suspended); available with every replica ready Healthy.
fn rabbitmq_cluster(v: &Value) -> Health {
    let c = conditions(v);
    let state = |kind: &str| find(c, kind).map(|x| text(x, "/status"));
    if let Some(failed) = find(c, "ReconcileSuccess").filter(|x| text(x, "/status") == "False") {
        return Health::new(Degraded, text(failed, "/message"));
    }
    let (available, replicas) = (state("ClusterAvailable"), state("AllReplicasReady"));
    if available == Some("Unknown") || replicas == Some("Unknown") {
        return Health::new(
            Progressing,
            "waiting for the cluster's conditions to settle",
        );
    }
    let scaled_to_zero = find(c, "AllReplicasReady")
        .is_some_and(|x| text(x, "/status") == "False" && text(x, "/reason") == "ScaledToZero");
    if scaled_to_zero && v.pointer("/spec/replicas").and_then(Value::as_i64) == Some(0) {
        return Health::new(Suspended, "scaled to 0 replicas");
    }
    match (available, replicas) {
        (Some("False"), _) => Health::new(Progressing, "waiting for the cluster to form"),
        (_, Some("False")) => Health::new(Progressing, "waiting for the instances to be ready"),
        (Some("True"), Some("True")) => Health::new(Healthy, "RabbitMQ cluster ready"),
        _ => Health::new(Progressing, "waiting for the RabbitMQ operator"),
    }
}

/// A RabbitMQ messaging-topology object (Queue, Exchange, User, …): its `Ready` condition;
/// without one its state is not known (the topology operator writes it on every reconcile).
fn rabbitmq_topology(v: &Value) -> Health {
    match find(conditions(v), "Ready") {
        Some(r) if text(r, "/status") == "True" => Health::new(Healthy, "ready"),
        Some(r) if text(r, "/status") == "False" => Health::new(
            Degraded,
            match text(r, "/message") {
                "" => text(r, "/reason"),
                m => m,
            },
        ),
        _ => Health::new(Unknown, "the topology operator has not reported"),
    }
}

/// A Zalando postgres-operator cluster by `status.PostgresClusterStatus`.
fn zalando_postgres(v: &Value) -> Health {
    let state = text(v, "/status/PostgresClusterStatus");
    match state {
        "" => Health::new(
            Progressing,
            "waiting for the operator to report the cluster",
        ),
        "Running" => Health::new(Healthy, state),
        "Creating" | "Updating" | "Syncing" => Health::new(Progressing, state),
        s if s.ends_with("Failed") || s == "Invalid" => Health::new(Degraded, state),
        _ => Health::new(Progressing, state),
    }
}

/// The generic rule's first test: a spec the controller has not observed yet.
fn generic_generation(v: &Value) -> Option<(Health, Rule)> {
    let generation = v.pointer("/metadata/generation").and_then(Value::as_i64)?;
    let observed = v
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64)?;
    (observed < generation).then(|| {
        (
            Health::new(
                Progressing,
                "waiting for the controller to observe the latest spec",
            ),
            "generic: status.observedGeneration",
        )
    })
}

/// Groups whose controllers always publish a status: an object of theirs that has none
/// (or none of the conventions) yet is waiting for the controller, not without health.
fn publishes_status(group: &str) -> bool {
    const GROUPS: &[&str] = &[
        "cert-manager.io",
        "acme.cert-manager.io",
        "external-secrets.io",
        "generators.external-secrets.io",
        "bitnami.com",
        "keda.sh",
        "serving.knative.dev",
        "eventing.knative.dev",
        "sources.knative.dev",
        "kafka.strimzi.io",
        "core.strimzi.io",
        "cluster.x-k8s.io",
        "kubevirt.io",
        "cdi.kubevirt.io",
        "postgresql.cnpg.io",
        "apps.kruise.io",
        "velero.io",
        "platform.confluent.io",
        "kyverno.io",
        "serving.kserve.io",
        "install.istio.io",
        "onepassword.com",
        "db.atlasgo.io",
        "datadoghq.com",
        "jaegertracing.io",
        "tekton.dev",
        "secrets.hashicorp.com",
        "argoproj.io",
        "addons.projectcapsule.dev",
        "capsule.clastix.io",
    ];
    GROUPS.contains(&group)
        || group.ends_with(".cnrm.cloud.google.com")
        || group.ends_with(".services.k8s.aws")
        || group.ends_with(".toolkit.fluxcd.io")
        || group.ends_with(".cluster.x-k8s.io")
        || crossplane(group)
}

/// The controller has written nothing yet: no status, or one whose fields are all empty
/// (`conditions: []`) apart from `observedGeneration`.
fn reported_nothing(v: &Value) -> bool {
    let Some(status) = v.get("status") else {
        return true;
    };
    let Some(fields) = status.as_object() else {
        return status.is_null();
    };
    fields.iter().all(|(key, value)| {
        key == "observedGeneration"
            || match value {
                Value::Null => true,
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                Value::String(s) => s.is_empty(),
                _ => false,
            }
    })
}

/// Crossplane's own groups and its providers' (`*.crossplane.io`, `*.upbound.io`).
fn crossplane(group: &str) -> bool {
    group == "crossplane.io" || group.ends_with(".crossplane.io") || group.ends_with(".upbound.io")
}

/// Crossplane kinds that are configuration only: nothing ever writes conditions on them.
fn crossplane_configuration(kind: &str) -> bool {
    matches!(
        kind,
        "Composition"
            | "CompositionRevision"
            | "EnvironmentConfig"
            | "ImageConfig"
            | "DeploymentRuntimeConfig"
            | "ControllerConfig"
            | "StoreConfig"
            | "ProviderConfig"
            | "ClusterProviderConfig"
            | "ProviderConfigUsage"
            | "ClusterProviderConfigUsage"
    )
}

fn condition_message(v: &Value, kind: &str) -> String {
    find(conditions(v), kind)
        .map(|c| {
            let m = text(c, "/message");
            if m.is_empty() { text(c, "/reason") } else { m }
        })
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

/// A cert-manager Certificate being (re)issued: its `Issuing` condition, or a `Ready=False`
/// that cert-manager writes while issuing (before the `Issuing` condition appears).
fn certificate_issuing(v: &Value) -> bool {
    let c = conditions(v);
    let ready = find(c, "Ready");
    if ready.is_some_and(|r| text(r, "/status") == "True") {
        return false;
    }
    find(c, "Issuing").is_some_and(|i| text(i, "/status") == "True")
        || ready.is_some_and(|r| {
            text(r, "/status") == "False"
                && matches!(
                    text(r, "/reason"),
                    "Issuing" | "DoesNotExist" | "InProgress"
                )
        })
}

fn issuing_message(v: &Value) -> String {
    let issuing = condition_message(v, "Issuing");
    if issuing.is_empty() {
        condition_message(v, "Ready")
    } else {
        issuing
    }
}

fn conditions(v: &Value) -> &[Value] {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn find<'a>(conditions: &'a [Value], kind: &str) -> Option<&'a Value> {
    conditions.iter().find(|c| text(c, "/type") == kind)
}

fn suspended_by_spec(v: &Value) -> bool {
    v.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true)
}

fn keda_paused(v: &Value) -> bool {
    let annotations = v.pointer("/metadata/annotations");
    let get = |k: &str| annotations.and_then(|a| a.get(k)).and_then(Value::as_str);
    get("autoscaling.keda.sh/paused") == Some("true")
        || get("autoscaling.keda.sh/paused-replicas").is_some()
}

/// The generic rule, in order: a newer spec not yet observed is Progressing; `spec.paused`
/// or `Paused=True` is Suspended; kstatus' `Stalled` (and Strimzi's `NotReady`) True is Degraded;
/// `Reconciling=True` is Progressing unless `Ready` is False (Flux's "failed, retrying");
/// Crossplane's `Synced=False` is Degraded whatever `Ready` says; then the first of `Ready`,
/// `Available`, `Synced`, `Healthy`, `RevisionHealthy`, `Established`, `Deployed`: True is Healthy, False
/// Degraded (Progressing with Cluster API's severity Info), Unknown Progressing; else a
/// `status.phase` of the common words.
pub fn generic(v: &Value) -> Option<(Health, Rule)> {
    if let Some(waiting) = generic_generation(v) {
        return Some(waiting);
    }
    if suspended_by_spec_paused(v) {
        return Some((
            Health::new(Suspended, "paused (spec.paused)"),
            "generic: spec.paused",
        ));
    }
    let conditions = conditions(v);
    let is_true = |kind: &str| find(conditions, kind).is_some_and(|c| text(c, "/status") == "True");
    let message = |kind: &str| condition_message(v, kind);
    if is_true("Paused") {
        return Some((
            Health::new(Suspended, message("Paused")),
            "generic: Paused condition",
        ));
    }
    if is_true("Stalled") {
        return Some((
            Health::new(Degraded, message("Stalled")),
            "generic: Stalled condition",
        ));
    }
    if is_true("NotReady") {
        return Some((
            Health::new(Degraded, message("NotReady")),
            "generic: NotReady condition",
        ));
    }
    if is_true("Error") {
        return Some((
            Health::new(Degraded, message("Error")),
            "generic: Error condition",
        ));
    }
    // Ready=False while the controller is still at work says so in its reason.
    if let Some(ready) = find(conditions, "Ready")
        && text(ready, "/status") == "False"
        && matches!(
            text(ready, "/reason"),
            "Reconciling"
                | "Progressing"
                | "InProgress"
                | "Pending"
                | "Creating"
                | "Updating"
                | "Provisioning"
                | "Initializing"
                | "Installing"
                | "Deploying"
        )
    {
        return Some((
            Health::new(Progressing, message("Ready")),
            "generic: Ready condition (in progress)",
        ));
    }
    let ready_failed = find(conditions, "Ready").is_some_and(|c| text(c, "/status") == "False");
    if is_true("Reconciling") && !ready_failed {
        return Some((
            Health::new(Progressing, message("Reconciling")),
            "generic: Reconciling condition",
        ));
    }
    if let Some(synced) = find(conditions, "Synced")
        && text(synced, "/status") == "False"
    {
        return Some((
            Health::new(Degraded, message("Synced")),
            "generic: Synced condition",
        ));
    }
    for kind in [
        "Ready",
        "Available",
        "Synced",
        "Healthy",
        "RevisionHealthy",
        "Established",
        "Deployed",
        "Valid",
        "Succeeded",
    ] {
        let Some(c) = find(conditions, kind) else {
            continue;
        };
        // A condition written for an older spec (metav1.Condition's own observedGeneration)
        // says nothing about the current one.
        let generation = v.pointer("/metadata/generation").and_then(Value::as_i64);
        let observed = c.get("observedGeneration").and_then(Value::as_i64);
        if let (Some(generation), Some(observed)) = (generation, observed)
            && observed < generation
        {
            return Some((
                Health::new(
                    Progressing,
                    format!("waiting for the controller to observe generation {generation}"),
                ),
                "generic: condition observedGeneration",
            ));
        }
        let status = match text(c, "/status") {
            "True" => Healthy,
            // Cluster API grades a False condition: severity Info means still on its way.
            "False" if text(c, "/severity") == "Info" => Progressing,
            "False" => Degraded,
            _ => Progressing,
        };
        let rule = match kind {
            "Ready" => "generic: Ready condition",
            "Available" => "generic: Available condition",
            "Synced" => "generic: Synced condition",
            "Healthy" | "RevisionHealthy" => "generic: Healthy condition",
            "Deployed" => "generic: Deployed condition",
            "Valid" => "generic: Valid condition",
            "Succeeded" => "generic: Succeeded condition",
            _ => "generic: Established condition",
        };
        return Some((Health::new(status, message(kind)), rule));
    }
    if let Some(ansible) = ansible_operator(conditions) {
        return Some((ansible, "generic: Ansible operator conditions"));
    }
    // `status.phase`, else `status.state` (cert-manager's ACME orders and challenges, others),
    // else a `status.status` word (Istio's operator).
    let (phase, rule) = match (text(v, "/status/phase"), text(v, "/status/state")) {
        ("", "") => (text(v, "/status/status"), "generic: status.status"),
        ("", state) => (state, "generic: status.state"),
        (phase, _) => (phase, "generic: status.phase"),
    };
    let status = match phase.to_ascii_lowercase().as_str() {
        "running" | "ready" | "active" | "available" | "bound" | "healthy" | "succeeded"
        | "successful" | "completed" | "established" | "deployed" | "valid" => Healthy,
        "failed" | "error" | "errored" | "invalid" | "expired" | "degraded" | "unhealthy"
        | "crashloopbackoff" => Degraded,
        "pending" | "progressing" | "provisioning" | "processing" | "creating" | "initializing"
        | "updating" | "reconciling" | "waiting" | "scalingup" | "scalingdown" | "inprogress"
        | "deploying" | "building" => Progressing,
        "paused" | "suspended" => Suspended,
        _ => return ready_replicas(v),
    };
    let message = match text(v, "/status/message") {
        "" => text(v, "/status/reason"),
        m => m,
    }
    .to_string();
    Some((Health::new(status, message), rule))
}

/// The conditions operator-sdk's Ansible operators write: `Failure` True is Degraded,
/// `Successful` True Healthy; `Running` True is a reconciliation under way, or failed when its
/// reason (or, from older operators, its message) says so.
fn ansible_operator(conditions: &[Value]) -> Option<Health> {
    let is_true = |kind: &str| find(conditions, kind).filter(|c| text(c, "/status") == "True");
    let message = |c: &Value| text(c, "/message").to_string();
    if let Some(failure) = is_true("Failure") {
        return Some(Health::new(Degraded, message(failure)));
    }
    if let Some(success) = is_true("Successful") {
        return Some(Health::new(Healthy, message(success)));
    }
    let running = is_true("Running")?;
    let status = match text(running, "/reason") {
        // "Awaiting next reconciliation": the last one succeeded.
        "Successful" => Healthy,
        "Failed" => Degraded,
        _ if text(running, "/message").starts_with("Error") => Degraded,
        _ => Progressing,
    };
    Some(Health::new(status, message(running)))
}

/// Last resort for a status that only counts replicas (the scale-subresource convention):
/// Healthy once `readyReplicas` reaches `replicas`, Progressing before.
fn ready_replicas(v: &Value) -> Option<(Health, Rule)> {
    let replicas = v.pointer("/status/replicas").and_then(Value::as_i64)?;
    // Counted by `readyReplicas`, else `availableReplicas`; a status with neither counts
    // nothing we can read (zero is often left out, so absence is not zero).
    let ready = v
        .pointer("/status/readyReplicas")
        .or_else(|| v.pointer("/status/availableReplicas"))
        .and_then(Value::as_i64)
        .or((replicas == 0).then_some(0))?;
    let health = if ready >= replicas {
        Health::new(Healthy, format!("{ready} of {replicas} replicas ready"))
    } else {
        Health::new(Progressing, format!("{ready} of {replicas} replicas ready"))
    };
    Some((health, "generic: ready replicas"))
}

/// A GKE ManagedCertificate: a domain the load balancer could not provision for (`Failed…`) is
/// Degraded; every domain and the certificate Active Healthy; otherwise still provisioning.
fn managed_certificate(v: &Value) -> Health {
    let domains = v
        .pointer("/status/domainStatus")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let failed: Vec<&str> = domains
        .iter()
        .filter(|d| text(d, "/status").starts_with("Failed"))
        .map(|d| text(d, "/domain"))
        .collect();
    if !failed.is_empty() {
        return Health::new(
            Degraded,
            format!("certificate provisioning failed for {}", failed.join(", ")),
        );
    }
    let all_active = !domains.is_empty() && domains.iter().all(|d| text(d, "/status") == "Active");
    if text(v, "/status/certificateStatus") == "Active" && all_active {
        return Health::new(Healthy, "all certificates are active");
    }
    Health::new(Progressing, "certificate is being provisioned")
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tiphys_model::application::HealthStatusCode;

    use super::*;

    fn status(group: &str, kind: &str, v: Value) -> Option<HealthStatusCode> {
        library(group, kind, &v).map(|(h, _)| h.status)
    }

    fn with_conditions(conditions: Value) -> Value {
        json!({"metadata": {"name": "x", "generation": 2}, "status": {"observedGeneration": 2, "conditions": conditions}})
    }

    #[test]
    fn the_generic_rule_reads_common_conventions() {
        let c = |t: &str, s: &str| json!({"type": t, "status": s, "reason": "R", "message": format!("{t} is {s}")});
        // A Ready written for generation 1 of a generation-2 object is stale.
        let stale = json!({"metadata": {"generation": 2}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "observedGeneration": 1}]}});
        assert_eq!(
            status("example.com", "Widget", stale.clone()),
            Some(Progressing)
        );
        let mut current = stale;
        current["status"]["conditions"][0]["observedGeneration"] = json!(2);
        assert_eq!(status("example.com", "Widget", current), Some(Healthy));
        assert_eq!(
            status(
                "cert-manager.io",
                "Certificate",
                with_conditions(json!([c("Ready", "True")]))
            ),
            Some(Healthy)
        );
        let (h, rule) = library(
            "cert-manager.io",
            "Certificate",
            &with_conditions(json!([c("Ready", "False")])),
        )
        .unwrap();
        assert_eq!(
            (h.status, h.message.as_str(), rule),
            (Degraded, "Ready is False", "generic: Ready condition")
        );
        assert_eq!(
            status(
                "x.io",
                "Thing",
                with_conditions(json!([c("Ready", "Unknown")]))
            ),
            Some(Progressing)
        );
        assert_eq!(
            status(
                "x.io",
                "Thing",
                with_conditions(json!([c("Available", "True")]))
            ),
            Some(Healthy)
        );
        // kstatus before Ready — but a failed Ready while retrying is a failure (Flux).
        assert_eq!(
            status(
                "x.io",
                "Thing",
                with_conditions(json!([c("Ready", "Unknown"), c("Reconciling", "True")]))
            ),
            Some(Progressing)
        );
        assert_eq!(
            status(
                "helm.toolkit.fluxcd.io",
                "HelmRelease",
                with_conditions(json!([c("Reconciling", "True"), c("Ready", "False")]))
            ),
            Some(Degraded)
        );
        // Paused is Suspended; Strimzi's NotReady is a failure; Crossplane packages' Healthy.
        assert_eq!(
            status(
                "keda.sh",
                "ScaledObject",
                with_conditions(json!([c("Ready", "True"), c("Paused", "True")]))
            ),
            Some(Suspended)
        );
        assert_eq!(
            status(
                "kafka.strimzi.io",
                "Kafka",
                with_conditions(json!([c("NotReady", "True")]))
            ),
            Some(Degraded)
        );
        assert_eq!(
            status(
                "pkg.crossplane.io",
                "Provider",
                with_conditions(json!([c("Healthy", "False"), c("Installed", "True")]))
            ),
            Some(Degraded)
        );
        assert_eq!(
            status(
                "x.io",
                "Thing",
                with_conditions(json!([c("Ready", "True"), c("Stalled", "True")]))
            ),
            Some(Degraded)
        );
        // Crossplane: Synced=False is an error even when Ready.
        assert_eq!(
            status(
                "s3.aws.upbound.io",
                "Bucket",
                with_conditions(json!([c("Ready", "True"), c("Synced", "False")]))
            ),
            Some(Degraded)
        );
        assert_eq!(
            status(
                "bitnami.com",
                "SealedSecret",
                with_conditions(json!([c("Synced", "True")]))
            ),
            Some(Healthy)
        );
        // A spec not observed yet.
        let pending = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2, "conditions": [c("Ready", "True")]}});
        assert_eq!(status("x.io", "Thing", pending), Some(Progressing));
        // Phases.
        assert_eq!(
            status("x.io", "Thing", json!({"status": {"phase": "Running"}})),
            Some(Healthy)
        );
        assert_eq!(
            status("x.io", "Thing", json!({"status": {"phase": "Failed"}})),
            Some(Degraded)
        );
        assert_eq!(
            status("x.io", "Thing", json!({"status": {"phase": "Pending"}})),
            Some(Progressing)
        );
        // A controller that always reports has not yet: waiting for it.
        for (group, kind) in [
            ("cert-manager.io", "Certificate"),
            ("bitnami.com", "SealedSecret"),
            ("kafka.strimzi.io", "Kafka"),
            ("apiextensions.crossplane.io", "CompositeResourceDefinition"),
        ] {
            assert_eq!(
                status(group, kind, json!({"spec": {}})),
                Some(Progressing),
                "{kind}"
            );
        }
        // Crossplane configuration has no status at all and is ready as it is.
        assert_eq!(
            status(
                "apiextensions.crossplane.io",
                "Composition",
                json!({"spec": {}})
            ),
            Some(Healthy)
        );
        assert_eq!(
            status(
                "helm.m.crossplane.io",
                "ProviderConfig",
                json!({"status": {"conditions": []}})
            ),
            Some(Healthy)
        );
        // Nothing recognisable: no health (it does not count, as a ConfigMap does not).
        assert_eq!(status("x.io", "Thing", json!({"spec": {}})), None);
        assert_eq!(
            status("x.io", "Thing", json!({"status": {"phase": "Sideways"}})),
            None
        );
    }

    #[test]
    fn kinds_the_library_names() {
        let conditions = |list: Value| json!({"status": {"conditions": list}});
        let c = |t: &str, s: &str| json!({"type": t, "status": s, "message": t, "reason": "R"});
        let es = |count: i64, status: Value| json!({"spec": {"nodeSets": [{"count": count}]}, "status": status});
        let route = |s: &str| json!({"status": {"ingress": [{"conditions": [{"type": "Admitted", "status": s}]}]}});
        let phase = |p: &str| json!({"status": {"phase": p}});
        let vm = |state: &str| json!({"status": {"printableStatus": state, "conditions": [c("Ready", "False")]}});
        let pg = |annotations: Value, phase: &str| {
            json!({"metadata": {"annotations": annotations},
            "status": {"phase": phase, "conditions": [c("Ready", "False")]}})
        };
        let dv = |phase: &str, running: Value| json!({"status": {"phase": phase, "conditions": [c("Ready", "False"), running]}});
        let es_group = "elasticsearch.k8s.elastic.co";
        let cases = [
            // ApplicationSets by their controller's conditions.
            (
                "argoproj.io",
                "ApplicationSet",
                conditions(json!([
                    c("ErrorOccurred", "False"),
                    c("ResourcesUpToDate", "True")
                ])),
                Healthy,
            ),
            (
                "argoproj.io",
                "ApplicationSet",
                conditions(json!([
                    c("ErrorOccurred", "True"),
                    c("ResourcesUpToDate", "False")
                ])),
                Degraded,
            ),
            (
                "argoproj.io",
                "ApplicationSet",
                conditions(json!([
                    c("ResourcesUpToDate", "True"),
                    c("RolloutProgressing", "True")
                ])),
                Progressing,
            ),
            // OpenShift routes by admission.
            ("route.openshift.io", "Route", route("True"), Healthy),
            ("route.openshift.io", "Route", route("False"), Degraded),
            ("route.openshift.io", "Route", route("Unknown"), Progressing),
            // Elastic by phase, node count and colour.
            (
                es_group,
                "Elasticsearch",
                es(
                    3,
                    json!({"availableNodes": 3, "health": "green", "phase": "Ready"}),
                ),
                Healthy,
            ),
            (
                es_group,
                "Elasticsearch",
                es(3, json!({"availableNodes": 3, "health": "yellow"})),
                Degraded,
            ),
            (
                es_group,
                "Elasticsearch",
                es(5, json!({"availableNodes": 3, "health": "green"})),
                Progressing,
            ),
            (
                es_group,
                "Elasticsearch",
                es(3, json!({"health": "green", "phase": "MigratingData"})),
                Progressing,
            ),
            (es_group, "Elasticsearch", es(3, json!({})), Unknown),
            // ACME orders and challenges publish a state, not a phase.
            (
                "acme.cert-manager.io",
                "Order",
                json!({"status": {"state": "valid"}}),
                Healthy,
            ),
            (
                "acme.cert-manager.io",
                "Challenge",
                json!({"status": {"state": "pending"}}),
                Progressing,
            ),
            (
                "acme.cert-manager.io",
                "Order",
                json!({"status": {"state": "errored"}}),
                Degraded,
            ),
            // CDI: importing with Ready False is on its way; an erroring transfer is not.
            (
                "cdi.kubevirt.io",
                "DataVolume",
                dv("ImportInProgress", c("Running", "True")),
                Progressing,
            ),
            (
                "cdi.kubevirt.io",
                "DataVolume",
                dv(
                    "ImportInProgress",
                    json!({"type": "Running", "status": "False", "reason": "Error"}),
                ),
                Degraded,
            ),
            (
                "cdi.kubevirt.io",
                "DataVolume",
                dv("Succeeded", c("Running", "False")),
                Healthy,
            ),
            // Argo Rollouts analysis by phase; Inconclusive needs a person.
            ("argoproj.io", "AnalysisRun", phase("Running"), Progressing),
            ("argoproj.io", "AnalysisRun", phase("Successful"), Healthy),
            ("argoproj.io", "Experiment", phase("Error"), Degraded),
            ("argoproj.io", "AnalysisRun", phase("Inconclusive"), Unknown),
            // Cluster API: paused by spec; a False Ready of severity Info is on its way.
            (
                "cluster.x-k8s.io",
                "MachineDeployment",
                json!({"spec": {"paused": true}, "status": {"phase": "Running"}}),
                Suspended,
            ),
            (
                "cluster.x-k8s.io",
                "Machine",
                json!({"status": {"phase": "Provisioning", "conditions": [
                {"type": "Ready", "status": "False", "severity": "Info"}]}}),
                Progressing,
            ),
            // KubeVirt: stopped on purpose, starting, running, failing.
            ("kubevirt.io", "VirtualMachine", vm("Stopped"), Suspended),
            ("kubevirt.io", "VirtualMachine", vm("Starting"), Progressing),
            ("kubevirt.io", "VirtualMachine", vm("Running"), Healthy),
            (
                "kubevirt.io",
                "VirtualMachine",
                vm("ErrImagePull"),
                Degraded,
            ),
            // CloudNativePG: hibernated, setting up, failing over.
            (
                "postgresql.cnpg.io",
                "Cluster",
                pg(
                    json!({"cnpg.io/hibernation": "on"}),
                    "Cluster in healthy state",
                ),
                Suspended,
            ),
            (
                "postgresql.cnpg.io",
                "Cluster",
                pg(json!({}), "Setting up primary"),
                Progressing,
            ),
            (
                "postgresql.cnpg.io",
                "Cluster",
                pg(json!({}), "Failing over"),
                Degraded,
            ),
        ];
        for (group, kind, object, want) in cases {
            assert_eq!(
                status(group, kind, object.clone()),
                Some(want),
                "{kind}: {object}"
            );
        }
    }

    #[test]
    fn cloud_controllers_and_operators_by_their_own_conventions() {
        let ready = |status: &str, reason: &str| {
            json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": status, "reason": reason, "message": "m"}]}})
        };
        let sql = |v| status("sql.cnrm.cloud.google.com", "SQLInstance", v);
        assert_eq!(sql(ready("True", "UpToDate")), Some(Healthy));
        assert_eq!(sql(ready("False", "DependencyNotReady")), Some(Suspended));
        assert_eq!(sql(ready("False", "Updating")), Some(Progressing));
        assert_eq!(sql(ready("False", "DependencyNotFound")), Some(Degraded));
        assert_eq!(sql(ready("False", "UpdateFailed")), Some(Degraded));
        let mut stale = ready("True", "UpToDate");
        stale["metadata"]["generation"] = json!(2);
        assert_eq!(sql(stale), Some(Progressing));
        assert_eq!(sql(json!({"spec": {}})), Some(Progressing), "no status yet");
        let operator = |healthy: bool, generation: i64| {
            json!({"metadata": {"generation": generation},
                   "status": {"healthy": healthy, "observedGeneration": 2}})
        };
        let cc = |kind, v| status("core.cnrm.cloud.google.com", kind, v);
        assert_eq!(cc("ConfigConnector", operator(true, 2)), Some(Healthy));
        assert_eq!(
            cc("ConfigConnectorContext", operator(false, 2)),
            Some(Degraded)
        );
        assert_eq!(cc("ConfigConnector", operator(true, 3)), Some(Progressing));

        let ack = |conditions: Value| {
            status(
                "s3.services.k8s.aws",
                "Bucket",
                json!({"status": {"conditions": conditions}}),
            )
        };
        assert_eq!(
            ack(
                json!([{"type": "ACK.Terminal", "status": "True", "message": "exists"},
                       {"type": "Ready", "status": "False"}])
            ),
            Some(Degraded)
        );
        assert_eq!(
            ack(json!([{"type": "Ready", "status": "False"}])),
            Some(Progressing)
        );
        assert_eq!(
            ack(json!([{"type": "Ready", "status": "True"}])),
            Some(Healthy)
        );
        assert_eq!(ack(json!([])), Some(Progressing), "no conditions yet");

        let pg = |state: Option<&str>| {
            let v = match state {
                Some(s) => json!({"status": {"PostgresClusterStatus": s}}),
                None => json!({"spec": {}}),
            };
            status("acid.zalan.do", "postgresql", v)
        };
        assert_eq!(pg(Some("Running")), Some(Healthy));
        assert_eq!(pg(Some("Updating")), Some(Progressing));
        assert_eq!(pg(Some("UpdateFailed")), Some(Degraded));
        assert_eq!(pg(None), Some(Progressing));
        let cluster = |status: Value| {
            self::status(
                "cluster.x-k8s.io",
                "Cluster",
                json!({"spec": {}, "status": status}),
            )
        };
        let condition = |kind: &str, status: &str| json!({"type": kind, "status": status});
        assert_eq!(
            cluster(
                json!({"phase": "Provisioned", "conditions": [condition("Ready", "True")],
                "v1beta2": {"conditions": [condition("RollingOut", "True")]}})
            ),
            Some(Progressing),
            "v1beta2's conditions on a v1beta1 object"
        );
        assert_eq!(
            cluster(json!({"conditions": [condition("Available", "True"),
                {"type": "TopologyReconciled", "status": "False", "severity": "Info"}]})),
            Some(Progressing),
            "an upgrade on hold"
        );
        assert_eq!(
            cluster(json!({"phase": "Provisioning", "conditions": [condition("Ready", "True")]})),
            Some(Progressing)
        );
        assert_eq!(
            cluster(
                json!({"conditions": [{"type": "Ready", "status": "False", "severity": "Error"}]})
            ),
            Some(Degraded)
        );
        assert_eq!(cluster(json!({"phase": "Failed"})), Some(Degraded));
        assert_eq!(
            cluster(json!({"conditions": [condition("Ready", "True")]})),
            Some(Healthy)
        );
        let kcp = |status: Value| {
            self::status(
                "controlplane.cluster.x-k8s.io",
                "KubeadmControlPlane",
                json!({"spec": {"replicas": 3}, "status": status}),
            )
        };
        let counts = |updated: i64, ready: i64, conditions: Value| {
            json!({"replicas": 3, "updatedReplicas": updated, "readyReplicas": ready,
                   "conditions": conditions})
        };
        let healthy = json!([
            condition("EtcdClusterHealthy", "True"),
            condition("ControlPlaneComponentsHealthy", "True")
        ]);
        assert_eq!(kcp(counts(3, 3, healthy.clone())), Some(Healthy));
        assert_eq!(kcp(counts(2, 2, healthy.clone())), Some(Progressing));
        assert_eq!(kcp(counts(3, 1, healthy)), Some(Progressing));
        assert_eq!(
            kcp(counts(
                3,
                3,
                json!([
                    condition("EtcdClusterHealthy", "False"),
                    condition("MachinesReady", "False")
                ])
            )),
            Some(Degraded),
            "etcd first"
        );
        let mut rolling = counts(3, 3, json!([]));
        rolling["v1beta2"] = json!({"conditions": [condition("RollingOut", "True")]});
        assert_eq!(kcp(rolling), Some(Progressing));
        assert_eq!(
            self::status(
                "controlplane.cluster.x-k8s.io",
                "KubeadmControlPlane",
                json!({"spec": {}})
            ),
            Some(Progressing)
        );
        let cron = |conditions: Value, suspend: bool| {
            self::status(
                "argoproj.io",
                "CronWorkflow",
                json!({"spec": {"suspend": suspend}, "status": {"conditions": conditions}}),
            )
        };
        assert_eq!(cron(json!([]), false), Some(Healthy));
        assert_eq!(
            cron(json!([condition("SpecError", "False")]), false),
            Some(Healthy)
        );
        assert_eq!(
            cron(json!([condition("SubmissionError", "True")]), false),
            Some(Degraded)
        );
        assert_eq!(cron(json!([]), true), Some(Suspended));
        assert_eq!(
            self::status(
                "argoproj.io",
                "EventBus",
                json!({"status": {"conditions": [condition("Configured", "True"), condition("Deployed", "False")]}})
            ),
            Some(Degraded),
            "Argo Events' Deployed condition"
        );
        let subscription = |conditions: Value, installed: &str| {
            self::status(
                "operators.coreos.com",
                "Subscription",
                json!({"status": {"conditions": conditions, "installedCSV": installed}}),
            )
        };
        assert_eq!(
            subscription(
                json!([condition("CatalogSourcesUnhealthy", "False")]),
                "op.v1"
            ),
            Some(Healthy)
        );
        assert_eq!(
            subscription(json!([condition("CatalogSourcesUnhealthy", "True")]), ""),
            Some(Degraded)
        );
        assert_eq!(
            subscription(
                json!([
                    condition("CatalogSourcesUnhealthy", "False"),
                    condition("InstallPlanFailed", "True")
                ]),
                ""
            ),
            Some(Degraded)
        );
        assert_eq!(
            subscription(json!([condition("InstallPlanPending", "True")]), ""),
            Some(Progressing)
        );
        assert_eq!(
            subscription(
                json!([{"type": "InstallPlanPending", "status": "True", "reason": "RequiresApproval"}]),
                "op.v1"
            ),
            Some(Healthy),
            "an installed operator waiting for an approved upgrade runs"
        );
        assert_eq!(subscription(json!([]), ""), Some(Progressing));
        let tenant = |state: &str| {
            self::status(
                "minio.min.io",
                "Tenant",
                json!({"status": {"currentState": state}}),
            )
        };
        assert_eq!(tenant("Initialized"), Some(Healthy));
        assert_eq!(
            tenant("Provisioning MinIO Cluster IP Service"),
            Some(Progressing)
        );
        assert_eq!(
            tenant("Different versions across MinIO Pools"),
            Some(Degraded)
        );
        assert_eq!(tenant("<unknown status message>"), Some(Unknown));
        let keycloak = |conditions: Value| {
            self::status(
                "k8s.keycloak.org",
                "Keycloak",
                json!({"status": {"conditions": conditions}}),
            )
        };
        assert_eq!(
            keycloak(json!([
                condition("Ready", "False"),
                condition("HasErrors", "False"),
                condition("RollingUpdate", "True")
            ])),
            Some(Progressing)
        );
        assert_eq!(
            keycloak(json!([
                condition("Ready", "False"),
                condition("HasErrors", "True")
            ])),
            Some(Degraded)
        );
        assert_eq!(keycloak(json!([condition("Ready", "True")])), Some(Healthy));
        assert_eq!(
            self::status("k8s.keycloak.org", "Keycloak", json!({"spec": {}})),
            Some(Progressing)
        );
        let rabbit = |kind: &str, status: Value| {
            self::status(
                "rabbitmq.com",
                kind,
                json!({"spec": {"replicas": 0}, "status": status}),
            )
        };
        assert_eq!(rabbit("Queue", json!({})), Some(Unknown));
        assert_eq!(
            rabbit(
                "Queue",
                json!({"conditions": [{"type": "Ready", "status": "False", "reason": "FailedCreateOrUpdate"}]})
            ),
            Some(Degraded)
        );
        assert_eq!(
            rabbit(
                "RabbitmqCluster",
                json!({"conditions": [condition("ClusterAvailable", "True"), condition("AllReplicasReady", "True")]})
            ),
            Some(Healthy)
        );
        assert_eq!(
            rabbit(
                "RabbitmqCluster",
                json!({"conditions": [condition("ClusterAvailable", "Unknown")]})
            ),
            Some(Progressing)
        );
        assert_eq!(
            rabbit(
                "RabbitmqCluster",
                json!({"conditions": [
                {"type": "AllReplicasReady", "status": "False", "reason": "ScaledToZero"}]})
            ),
            Some(Suspended)
        );
        assert_eq!(
            rabbit(
                "RabbitmqCluster",
                json!({"conditions": [condition("ReconcileSuccess", "False")]})
            ),
            Some(Degraded)
        );
        let external_secret = |refreshed: &str| {
            self::status(
                "external-secrets.io",
                "ExternalSecret",
                json!({"metadata": {"creationTimestamp": "2021-11-16T21:59:33Z"},
                       "spec": {"refreshPolicy": "OnChange"},
                       "status": {"refreshTime": refreshed, "conditions": [condition("Ready", "True")]}}),
            )
        };
        assert_eq!(external_secret("2021-11-16T18:32:24Z"), Some(Progressing));
        assert_eq!(external_secret("2021-11-16T21:59:34Z"), Some(Healthy));
        let eks = |status: Value| {
            self::status(
                "controlplane.cluster.x-k8s.io",
                "AWSManagedControlPlane",
                json!({"spec": {}, "status": status}),
            )
        };
        assert_eq!(
            eks(json!({"ready": true, "conditions": [condition("Ready", "True")]})),
            Some(Healthy)
        );
        assert_eq!(
            eks(json!({"ready": true, "conditions": [condition("Ready", "False")]})),
            Some(Progressing),
            "not ready without an error is on its way"
        );
        assert_eq!(
            eks(json!({"conditions": [condition("Ready", "True"),
                                      condition("EKSControlPlaneUpdating", "True")]})),
            Some(Progressing)
        );
        assert_eq!(
            eks(
                json!({"conditions": [{"type": "Ready", "status": "False", "severity": "Error",
                                       "message": "quota"}]})
            ),
            Some(Degraded)
        );
        assert_eq!(
            eks(
                json!({"failureMessage": "EKS cluster in unexpected FAILED state", "ready": false})
            ),
            Some(Degraded)
        );
        let dc = |progressing: (&str, &str), available: &str| {
            status(
                "apps.openshift.io",
                "DeploymentConfig",
                json!({"status": {"conditions": [
                    {"type": "Progressing", "status": progressing.0, "reason": progressing.1},
                    {"type": "Available", "status": available}]}}),
            )
        };
        assert_eq!(
            dc(("True", "NewReplicationControllerAvailable"), "True"),
            Some(Healthy)
        );
        assert_eq!(
            dc(("True", "NewReplicationControllerAvailable"), "False"),
            Some(Healthy),
            "scaled to zero"
        );
        assert_eq!(
            dc(("True", "ReplicationControllerUpdated"), "True"),
            Some(Progressing)
        );
        assert_eq!(dc(("Unknown", ""), "True"), Some(Progressing));
        assert_eq!(dc(("Unknown", ""), "False"), Some(Degraded));
        assert_eq!(
            dc(("False", "ProgressDeadlineExceeded"), "True"),
            Some(Degraded)
        );
        // Capsule's addons publish a status: none yet is waiting, not without health.
        assert_eq!(
            status(
                "addons.projectcapsule.dev",
                "SopsSecret",
                json!({"spec": {}})
            ),
            Some(Progressing)
        );
    }

    #[test]
    fn a_vertical_pod_autoscaler_in_a_group_ending_in_k8s_io() {
        let vpa = |conditions: Value| json!({"spec": {}, "status": {"conditions": conditions}});
        let c = |t: &str| json!([{"type": t, "status": "True", "message": t}]);
        let code = |v: Value| {
            crate::explain(
                &json!({"apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler", "metadata": {"name": "v"}, "spec": v["spec"], "status": v["status"]}),
                &crate::CustomHealth::default(),
            )
            .map(|(h, _)| h.status)
        };
        assert_eq!(code(vpa(c("RecommendationProvided"))), Some(Healthy));
        assert_eq!(code(vpa(c("NoPodsMatched"))), Some(Degraded));
        assert_eq!(code(vpa(json!([]))), Some(Progressing));
        // Kubernetes' own groups stay without library health.
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "status": {"phase": "Running"}});
        assert_eq!(
            crate::explain(&lease, &crate::CustomHealth::default()).map(|(h, _)| h.status),
            None
        );
    }

    #[test]
    fn prometheus_operator_availability() {
        let available = |s: &str, reason: &str| json!({"status": {"conditions": [{"type": "Available", "status": s, "reason": reason}]}});
        assert_eq!(
            status(
                "monitoring.coreos.com",
                "Alertmanager",
                available("True", "")
            ),
            Some(Healthy)
        );
        assert_eq!(
            status(
                "monitoring.coreos.com",
                "Prometheus",
                available("Degraded", "SomePodsNotReady")
            ),
            Some(Progressing)
        );
        assert_eq!(
            status(
                "monitoring.coreos.com",
                "ThanosRuler",
                available("False", "SomePodsNotReady")
            ),
            Some(Progressing)
        );
        assert_eq!(
            status(
                "monitoring.coreos.com",
                "PrometheusAgent",
                available("False", "NoPodReady")
            ),
            Some(Degraded)
        );
        // Rules and monitors have no status: no health.
        assert_eq!(
            status(
                "monitoring.coreos.com",
                "ServiceMonitor",
                json!({"spec": {}})
            ),
            None
        );
    }

    #[test]
    fn ansible_operators_replicas_and_gke_certificates() {
        let c = |t: &str, reason: &str, message: &str| json!({"type": t, "status": "True", "reason": reason, "message": message});
        let with = |conditions: Value| json!({"spec": {}, "status": {"conditions": conditions}});
        assert_eq!(
            status(
                "example.io",
                "Thing",
                with(json!([c("Running", "Running", "Reconciling")]))
            ),
            Some(Progressing)
        );
        assert_eq!(
            status(
                "example.io",
                "Thing",
                with(json!([c("Running", "", "Error Reconciling")]))
            ),
            Some(Degraded)
        );
        assert_eq!(
            status(
                "example.io",
                "Thing",
                with(json!([
                    c("Running", "Successful", ""),
                    c("Successful", "Successful", "done")
                ]))
            ),
            Some(Healthy)
        );
        assert_eq!(
            status(
                "example.io",
                "Thing",
                with(json!([c("Failure", "Failed", "boom")]))
            ),
            Some(Degraded)
        );
        assert_eq!(
            status(
                "example.io",
                "Thing",
                with(json!([c(
                    "Running",
                    "Successful",
                    "Awaiting next reconciliation"
                )]))
            ),
            Some(Healthy)
        );
        assert_eq!(
            status(
                "example.io",
                "Thing",
                json!({"spec": {}, "status": {"replicas": 2}})
            ),
            None
        );
        let replicas =
            |ready: i64| json!({"spec": {}, "status": {"replicas": 3, "readyReplicas": ready}});
        assert_eq!(status("example.io", "Thing", replicas(3)), Some(Healthy));
        assert_eq!(
            status("example.io", "Thing", replicas(1)),
            Some(Progressing)
        );
        let cert = |certificate: &str, domain: &str| json!({"status": {"certificateStatus": certificate, "domainStatus": [{"domain": "a", "status": domain}]}});
        assert_eq!(
            status(
                "networking.gke.io",
                "ManagedCertificate",
                cert("Active", "Active")
            ),
            Some(Healthy)
        );
        assert_eq!(
            status(
                "networking.gke.io",
                "ManagedCertificate",
                cert("Provisioning", "Provisioning")
            ),
            Some(Progressing)
        );
        assert_eq!(
            status(
                "networking.gke.io",
                "ManagedCertificate",
                cert("Provisioning", "FailedNotVisible")
            ),
            Some(Degraded)
        );
    }

    #[test]
    fn cluster_resource_sets_by_resources_applied() {
        let set = |s: &str| json!({"spec": {}, "status": {"conditions": [{"type": "ResourcesApplied", "status": s, "message": "m"}]}});
        assert_eq!(
            status("addons.cluster.x-k8s.io", "ClusterResourceSet", set("True")),
            Some(Healthy)
        );
        assert_eq!(
            status(
                "addons.cluster.x-k8s.io",
                "ClusterResourceSet",
                set("False")
            ),
            Some(Degraded)
        );
        assert_eq!(
            status(
                "addons.cluster.x-k8s.io",
                "ClusterResourceSet",
                json!({"spec": {}})
            ),
            Some(Progressing)
        );
    }

    #[test]
    fn waiting_for_a_controller_only_while_it_reported_nothing() {
        let kruise = |status: Value| json!({"spec": {}, "status": status});
        assert_eq!(
            status("apps.kruise.io", "SidecarSet", json!({"spec": {}})),
            Some(Progressing)
        );
        assert_eq!(
            status(
                "apps.kruise.io",
                "SidecarSet",
                kruise(json!({"conditions": []}))
            ),
            Some(Progressing)
        );
        // A status in a shape no rule reads is no health, not Progressing forever.
        assert_eq!(
            status(
                "apps.kruise.io",
                "SidecarSet",
                kruise(json!({"matchedPods": 3, "updatedPods": 3}))
            ),
            None
        );
        // OpenShift's config kinds without operator conditions have no health either.
        let infrastructure = json!({"spec": {}, "status": {"platform": "AWS"}});
        assert_eq!(
            status("config.openshift.io", "Infrastructure", infrastructure),
            None
        );
    }

    #[test]
    fn openshift_operator_conditions() {
        let c = |t: &str, s: &str| json!({"type": t, "status": s, "message": t});
        let ingress = |conditions: Value, available: i64| json!({"spec": {"replicas": 1}, "status": {"availableReplicas": available, "conditions": conditions}});
        assert_eq!(
            status(
                "operator.openshift.io",
                "IngressController",
                ingress(json!([c("Available", "True")]), 1)
            ),
            Some(Healthy)
        );
        assert_eq!(
            status(
                "operator.openshift.io",
                "IngressController",
                ingress(json!([c("Available", "True")]), 0)
            ),
            Some(Progressing)
        );
        assert_eq!(
            status(
                "operator.openshift.io",
                "IngressController",
                ingress(json!([c("Degraded", "True")]), 0)
            ),
            Some(Degraded)
        );
        assert_eq!(
            status(
                "operator.openshift.io",
                "IngressController",
                ingress(json!([]), 0)
            ),
            Some(Progressing)
        );
    }

    #[test]
    fn tekton_runs_and_vault_secrets() {
        let run = |s: &str| json!({"spec": {}, "status": {"conditions": [{"type": "Succeeded", "status": s}]}});
        assert_eq!(
            status("tekton.dev", "PipelineRun", run("True")),
            Some(Healthy)
        );
        assert_eq!(
            status("tekton.dev", "TaskRun", run("False")),
            Some(Degraded)
        );
        assert_eq!(
            status("tekton.dev", "TaskRun", run("Unknown")),
            Some(Progressing)
        );
        let vault = |status: Value| json!({"spec": {}, "status": status});
        assert_eq!(
            status(
                "secrets.hashicorp.com",
                "VaultStaticSecret",
                vault(json!({"secretMAC": "ab"}))
            ),
            Some(Healthy)
        );
        assert_eq!(
            status(
                "secrets.hashicorp.com",
                "VaultStaticSecret",
                vault(json!({"lastGeneration": 1}))
            ),
            Some(Degraded)
        );
    }

    #[test]
    fn knative_operator_and_flux_oci_repositories() {
        let ready = |s: &str| json!({"status": {"conditions": [{"type": "InstallSucceeded", "status": "True"}, {"type": "Ready", "status": s}]}});
        assert_eq!(
            status("operator.knative.dev", "KnativeServing", ready("True")),
            Some(Healthy)
        );
        assert_eq!(
            status("operator.knative.dev", "KnativeServing", ready("False")),
            Some(Progressing)
        );
        assert_eq!(
            status("operator.knative.dev", "KnativeEventing", ready("odd")),
            Some(Degraded)
        );
        let oci = json!({"spec": {"type": "oci", "url": "oci://x"}, "status": {}});
        assert_eq!(
            status("source.toolkit.fluxcd.io", "HelmRepository", oci),
            Some(Healthy)
        );
        let git = json!({"spec": {}, "status": {"conditions": []}});
        assert_eq!(
            status("source.toolkit.fluxcd.io", "GitRepository", git),
            Some(Progressing)
        );
    }

    #[test]
    fn kinds_with_their_own_rules() {
        let rollout = |status: Value| json!({"spec": {}, "status": status});
        assert_eq!(
            status(
                "argoproj.io",
                "Rollout",
                rollout(json!({"phase": "Healthy"}))
            ),
            Some(Healthy)
        );
        assert_eq!(
            status(
                "argoproj.io",
                "Rollout",
                rollout(json!({"phase": "Degraded", "message": "aborted"}))
            ),
            Some(Degraded)
        );
        assert_eq!(
            status(
                "argoproj.io",
                "Rollout",
                rollout(json!({"phase": "Progressing"}))
            ),
            Some(Progressing)
        );
        assert_eq!(
            status(
                "argoproj.io",
                "Rollout",
                rollout(json!({"pauseConditions": [{"reason": "CanaryPauseStep"}]}))
            ),
            Some(Suspended)
        );
        assert_eq!(
            status(
                "argoproj.io",
                "Rollout",
                json!({"spec": {"paused": true}, "status": {}})
            ),
            Some(Suspended)
        );
        // Not observed by the controller yet: Progressing, paused or not (as Argo CD says).
        assert_eq!(
            status("argoproj.io", "Rollout", json!({"spec": {"paused": true}})),
            Some(Progressing)
        );

        let flux = json!({"spec": {"suspend": true}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(
            status("kustomize.toolkit.fluxcd.io", "Kustomization", flux),
            Some(Suspended)
        );
        let keda = json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused": "true"}}});
        assert_eq!(status("keda.sh", "ScaledObject", keda), Some(Suspended));
        let falling_back = json!({"status": {"conditions": [{"type": "Ready", "status": "True"},
            {"type": "Fallback", "status": "True", "message": "a trigger is falling back"}]}});
        assert_eq!(
            status("keda.sh", "ScaledObject", falling_back),
            Some(Degraded)
        );

        // cert-manager: a Certificate being issued is on its way, not failed.
        let issuing = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "DoesNotExist", "message": "Secret does not exist"},
            {"type": "Issuing", "status": "True", "message": "Issuing certificate as Secret does not exist"}]}});
        let (h, _) = library("cert-manager.io", "Certificate", &issuing).unwrap();
        assert_eq!(
            (h.status, h.message.as_str()),
            (Progressing, "Issuing certificate as Secret does not exist")
        );
        let early = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "Issuing", "message": "Issuing certificate"}]}});
        assert_eq!(
            status("cert-manager.io", "Certificate", early),
            Some(Progressing)
        );
        let refused = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "ConfigError", "message": "bad spec"}]}});
        assert_eq!(
            status("cert-manager.io", "Certificate", refused),
            Some(Degraded)
        );

        let route = |parents: Value| json!({"status": {"parents": parents}});
        let accepted = json!([{"conditions": [{"type": "Accepted", "status": "True"}, {"type": "ResolvedRefs", "status": "True"}]}]);
        assert_eq!(
            status("gateway.networking.k8s.io", "HTTPRoute", route(accepted)),
            Some(Healthy)
        );
        let refused = json!([{"conditions": [{"type": "Accepted", "status": "True"}, {"type": "ResolvedRefs", "status": "False", "message": "no such service"}]}]);
        assert_eq!(
            status("gateway.networking.k8s.io", "HTTPRoute", route(refused)),
            Some(Degraded)
        );
        // Attached to no gateway yet: nobody to report on it (Argo CD says Healthy too).
        assert_eq!(
            status("gateway.networking.k8s.io", "GRPCRoute", route(json!([]))),
            Some(Healthy)
        );
    }
}
