//! `kubernetes_sd_configs`: targets from the Kubernetes API, as Promtail discovers them.
//!
//! Each entry is watched by its own thread (a small tokio runtime): a list, then a watch from the
//! list's resourceVersion, by `kube`'s watcher, which resumes a dropped watch where it was and
//! lists again on 410 Gone, with backoff while the API server cannot be reached. The pods it
//! knows are kept with their targets ([`pod`]); every change bumps a generation that the file
//! source looks at each pass, so a new or changed pod is tailed within its poll period.
//!
//! Roles: `pod`, the pods of this node only (`spec.nodeName` is `HOSTNAME`, or the kernel's host
//! name), as Promtail watches them ([`pod`]); `node` ([`node`]), `service` ([`service`]) and `ingress` ([`ingress`]). The thread starts on the first look ([`KubernetesSd::refresh`]), so that
//! `-check-syntax` connects to nothing, and stops when the scrape config is dropped (a reload).

mod client;
pub mod endpoints;
pub mod endpointslice;
pub mod ingress;
mod joined;
pub mod node;
pub mod pod;
pub mod service;

use crate::config::schema::{KubernetesRole, KubernetesSdConfig};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use pod::TargetLabels;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the watching thread found, shared with the file source.
#[derive(Default)]
struct Shared {
    /// `namespace/name` → the object's targets.
    pods: Mutex<BTreeMap<String, Vec<TargetLabels>>>,
    generation: AtomicU64,
    stop: AtomicBool,
}

pub struct KubernetesSd {
    job: String,
    config: KubernetesSdConfig,
    shared: Arc<Shared>,
    started: bool,
    seen: u64,
}

impl KubernetesSd {
    /// A discovery that connects on its first [`refresh`](Self::refresh).
    pub fn new(job: &str, config: &KubernetesSdConfig) -> Result<Self, String> {
        Ok(Self {
            job: job.to_string(),
            config: config.clone(),
            shared: Arc::default(),
            started: false,
            seen: 0,
        })
    }

    /// Starts the watch on the first call; `true` when the targets changed since the last call.
    pub fn refresh(&mut self) -> bool {
        if !self.started {
            self.started = true;
            let (job, config, shared) =
                (self.job.clone(), self.config.clone(), self.shared.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("k8s-sd-{job}"))
                .spawn(move || watch_thread(&job, &config, &shared));
            if let Err(e) = spawned {
                tracing::error!(job = %self.job, error = %e, "cannot start kubernetes discovery");
            }
        }
        let now = self.shared.generation.load(Ordering::Acquire);
        std::mem::replace(&mut self.seen, now) != now
    }

    /// Whether the targets changed since the last [`refresh`](Self::refresh), without taking it.
    pub fn changed(&self) -> bool {
        self.started && self.shared.generation.load(Ordering::Acquire) != self.seen
    }

    /// The targets now, object by object.
    pub fn targets(&self) -> Vec<(String, TargetLabels)> {
        let role = self.config.role.name();
        let pods = self.shared.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods.iter()
            .flat_map(|(key, targets)| {
                targets
                    .iter()
                    .map(move |t| (format!("{role}/{key}"), t.clone()))
            })
            .collect()
    }
}

impl Drop for KubernetesSd {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

fn watch_thread(job: &str, config: &KubernetesSdConfig, shared: &Arc<Shared>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(job, error = %e, "cannot start kubernetes discovery");
            return;
        }
    };
    runtime.block_on(async {
        let mut backoff = Duration::from_secs(1);
        while !shared.stop.load(Ordering::Acquire) {
            let connected = match config.role {
                KubernetesRole::Node => follow::<Node>(job, config, shared, node::targets).await,
                KubernetesRole::Service => {
                    follow::<Service>(job, config, shared, service::targets).await
                }
                KubernetesRole::Endpoints => follow_endpoints(job, config, shared).await,
                KubernetesRole::EndpointSlice => {
                    follow_endpoint_slices(job, config, shared).await
                }
                KubernetesRole::Ingress => {
                    follow::<Ingress>(job, config, shared, ingress::targets).await
                }
                _ if config.attach_metadata.node || config.attach_metadata.namespace => {
                    follow_pods_with_metadata(job, config, shared).await
                }
                _ => follow::<Pod>(job, config, shared, pod::targets).await,
            };
            match connected {
                Ok(()) => return,
                Err(e) => {
                    count_error(job, "connect");
                    tracing::warn!(job, error = %e, "kubernetes discovery cannot connect; trying again");
                    stoppable_sleep(shared, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
}

/// Connects and watches until stopped; the error if no client could be made.
async fn follow<K: Watched>(
    job: &str,
    config: &KubernetesSdConfig,
    shared: &Arc<Shared>,
    targets: fn(&K) -> Vec<TargetLabels>,
) -> Result<(), String> {
    let apis = connect::<K>(config).await?;
    watch(job, apis, shared, targets).await;
    Ok(())
}

/// The `endpoints` role: endpoints, pods and services watched together.
async fn follow_endpoints(
    job: &str,
    config: &KubernetesSdConfig,
    shared: &Arc<Shared>,
) -> Result<(), String> {
    let apis = joined::Apis {
        primary: connect::<Endpoints>(config).await?,
        pods: connect::<Pod>(config).await?,
        services: connect::<Service>(config).await?,
        metadata: metadata_apis(config).await?,
    };
    joined::watch(job, apis, shared, endpoints::targets).await;
    Ok(())
}

/// The `endpointslice` role: slices, pods and services watched together.
async fn follow_endpoint_slices(
    job: &str,
    config: &KubernetesSdConfig,
    shared: &Arc<Shared>,
) -> Result<(), String> {
    let apis = joined::Apis {
        primary: connect::<EndpointSlice>(config).await?,
        pods: connect::<Pod>(config).await?,
        services: connect::<Service>(config).await?,
        metadata: metadata_apis(config).await?,
    };
    joined::watch(job, apis, shared, endpointslice::targets).await;
    Ok(())
}

/// The `pod` role with `attach_metadata`: the pods, and the nodes and namespaces whose labels
/// they take.
async fn follow_pods_with_metadata(
    job: &str,
    config: &KubernetesSdConfig,
    shared: &Arc<Shared>,
) -> Result<(), String> {
    let apis = joined::Apis {
        primary: connect::<Pod>(config).await?,
        pods: Vec::new(),
        services: Vec::new(),
        metadata: metadata_apis(config).await?,
    };
    joined::watch(job, apis, shared, |pod, _| pod::targets(pod)).await;
    Ok(())
}

/// The node and namespace watches `attach_metadata` asks for.
async fn metadata_apis(config: &KubernetesSdConfig) -> Result<joined::Metadata, String> {
    let attach = &config.attach_metadata;
    Ok(joined::Metadata {
        nodes: if attach.node {
            connect::<Node>(config).await?
        } else {
            Vec::new()
        },
        namespaces: if attach.namespace {
            connect::<Namespace>(config).await?
        } else {
            Vec::new()
        },
    })
}

/// What a role watches: a kind of object, cluster-wide (nodes) or by namespace.
trait Watched:
    kube::Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The role whose `selectors` apply to the watch (none for namespaces).
    const ROLE: Option<KubernetesRole>;
    const NAMESPACED: bool;
    /// The objects of namespace `ns`; every namespace's (or the cluster's) without one.
    fn api(client: kube::Client, ns: Option<&str>) -> kube::Api<Self>;
}

impl Watched for Pod {
    const ROLE: Option<KubernetesRole> = Some(KubernetesRole::Pod);
    const NAMESPACED: bool = true;
    fn api(client: kube::Client, ns: Option<&str>) -> kube::Api<Self> {
        ns.map_or_else(
            || kube::Api::all(client.clone()),
            |ns| kube::Api::namespaced(client.clone(), ns),
        )
    }
}

impl Watched for Node {
    const ROLE: Option<KubernetesRole> = Some(KubernetesRole::Node);
    const NAMESPACED: bool = false;
    fn api(client: kube::Client, _: Option<&str>) -> kube::Api<Self> {
        kube::Api::all(client)
    }
}

impl Watched for Endpoints {
    const ROLE: Option<KubernetesRole> = Some(KubernetesRole::Endpoints);
    const NAMESPACED: bool = true;
    fn api(client: kube::Client, ns: Option<&str>) -> kube::Api<Self> {
        ns.map_or_else(
            || kube::Api::all(client.clone()),
            |ns| kube::Api::namespaced(client.clone(), ns),
        )
    }
}

impl Watched for Namespace {
    const ROLE: Option<KubernetesRole> = None;
    const NAMESPACED: bool = false;
    fn api(client: kube::Client, _: Option<&str>) -> kube::Api<Self> {
        kube::Api::all(client)
    }
}

impl Watched for EndpointSlice {
    const ROLE: Option<KubernetesRole> = Some(KubernetesRole::EndpointSlice);
    const NAMESPACED: bool = true;
    fn api(client: kube::Client, ns: Option<&str>) -> kube::Api<Self> {
        ns.map_or_else(
            || kube::Api::all(client.clone()),
            |ns| kube::Api::namespaced(client.clone(), ns),
        )
    }
}

impl Watched for Ingress {
    const ROLE: Option<KubernetesRole> = Some(KubernetesRole::Ingress);
    const NAMESPACED: bool = true;
    fn api(client: kube::Client, ns: Option<&str>) -> kube::Api<Self> {
        ns.map_or_else(
            || kube::Api::all(client.clone()),
            |ns| kube::Api::namespaced(client.clone(), ns),
        )
    }
}

impl Watched for Service {
    const ROLE: Option<KubernetesRole> = Some(KubernetesRole::Service);
    const NAMESPACED: bool = true;
    fn api(client: kube::Client, ns: Option<&str>) -> kube::Api<Self> {
        ns.map_or_else(
            || kube::Api::all(client.clone()),
            |ns| kube::Api::namespaced(client.clone(), ns),
        )
    }
}

type Apis<K> = Vec<(Option<String>, kube::Api<K>, watcher::Config)>;

/// One API per watched namespace (all of them when none are named, or for nodes), with the
/// selectors of the role.
async fn connect<K: Watched>(config: &KubernetesSdConfig) -> Result<Apis<K>, String> {
    let client = client::client(config).await?;
    let mut namespaces = config.namespaces.names.clone();
    if config.namespaces.own_namespace {
        namespaces.push(client::own_namespace()?);
    }
    let mut watch_config = watcher::Config::default();
    let mut fields = Vec::new();
    for s in config
        .selectors
        .iter()
        .filter(|s| K::ROLE.as_ref() == Some(&s.role))
    {
        if !s.label.is_empty() {
            watch_config = watch_config.labels(&s.label);
        }
        if !s.field.is_empty() {
            fields.push(s.field.clone());
        }
    }
    // Promtail reads the pods of its own node only: it adds `spec.nodeName=<HOSTNAME>`.
    if K::ROLE == Some(KubernetesRole::Pod)
        && config.role == KubernetesRole::Pod
        && !fields.iter().any(|f| f.contains("spec.nodeName"))
    {
        fields.push(format!("spec.nodeName={}", super::this_host()));
    }
    if !fields.is_empty() {
        watch_config = watch_config.fields(&fields.join(","));
    }
    if namespaces.is_empty() || !K::NAMESPACED {
        return Ok(vec![(None, K::api(client, None), watch_config)]);
    }
    Ok(namespaces
        .into_iter()
        .map(|ns| {
            let api = K::api(client.clone(), Some(&ns));
            (Some(ns), api, watch_config.clone())
        })
        .collect())
}

/// Follows every namespace's objects until stopped.
async fn watch<K: Watched>(
    job: &str,
    apis: Apis<K>,
    shared: &Arc<Shared>,
    targets: fn(&K) -> Vec<TargetLabels>,
) {
    let streams = apis.into_iter().map(|(ns, api, config)| {
        watcher(api, config)
            .default_backoff()
            .map(move |event| (ns.clone(), event))
            .boxed()
    });
    let mut events = futures::stream::select_all(streams);
    // The objects a list is bringing, per namespace (None: all), until its InitDone.
    let mut listing: BTreeMap<Option<String>, HashSet<String>> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        let next = tokio::select! {
            e = events.next() => e,
            _ = tick.tick() => {
                if shared.stop.load(Ordering::Acquire) {
                    return;
                }
                continue;
            }
        };
        let Some((scope, event)) = next else {
            return;
        };
        match event {
            Ok(event) => apply(shared, &mut listing, scope, event, targets),
            Err(e) => {
                count_error(job, "watch");
                tracing::warn!(job, error = %e, "kubernetes watch failed; resuming");
            }
        }
    }
}

/// `lokiship_kubernetes_discovery_errors_total{job,reason}`.
fn count_error(job: &str, reason: &str) {
    crate::metrics::metrics()
        .os
        .kubernetes_errors
        .get_or_create(&crate::metrics::os::JobReasonLabels {
            job: job.to_string(),
            reason: reason.to_string(),
        })
        .inc();
}

/// `__meta_kubernetes_<role>_name`, and the object's labels and annotations, with their
/// `present` variants: what Prometheus gives every role's objects.
pub(super) fn object_meta(
    labels: &mut TargetLabels,
    role: &str,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) {
    labels.insert(
        format!("__meta_kubernetes_{role}_name"),
        meta.name.clone().unwrap_or_default(),
    );
    for (what, map) in [("label", &meta.labels), ("annotation", &meta.annotations)] {
        for (k, v) in map.iter().flatten() {
            let n = crate::source::sanitize_label_name(k);
            labels.insert(format!("__meta_kubernetes_{role}_{what}_{n}"), v.clone());
            labels.insert(
                format!("__meta_kubernetes_{role}_{what}present_{n}"),
                "true".into(),
            );
        }
    }
}

fn key<K: kube::Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

fn apply<K: Watched>(
    shared: &Shared,
    listing: &mut BTreeMap<Option<String>, HashSet<String>>,
    scope: Option<String>,
    event: watcher::Event<K>,
    targets: fn(&K) -> Vec<TargetLabels>,
) {
    let mut pods = shared.pods.lock().unwrap_or_else(|e| e.into_inner());
    let changed = match event {
        watcher::Event::Init => {
            listing.insert(scope, HashSet::new());
            false
        }
        watcher::Event::InitApply(object) => {
            let k = key(&object);
            listing.entry(scope).or_default().insert(k.clone());
            pods.insert(k, targets(&object));
            false
        }
        watcher::Event::InitDone => {
            // What the new list did not bring is gone (deleted while the watch was down).
            let listed = listing.remove(&scope).unwrap_or_default();
            let prefix = scope.map(|ns| format!("{ns}/"));
            pods.retain(|k, _| {
                listed.contains(k) || prefix.as_ref().is_some_and(|p| !k.starts_with(p))
            });
            // A list is taken as a whole, as a change: the first one brings the targets.
            true
        }
        watcher::Event::Apply(object) => {
            let targets = targets(&object);
            pods.insert(key(&object), targets.clone()) != Some(targets)
        }
        watcher::Event::Delete(object) => pods.remove(&key(&object)).is_some(),
    };
    if changed {
        shared.generation.fetch_add(1, Ordering::AcqRel);
    }
}

async fn stoppable_sleep(shared: &Shared, total: Duration) {
    let until = tokio::time::Instant::now() + total;
    while tokio::time::Instant::now() < until && !shared.stop.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
