//! The watch of roles whose targets join several kinds of objects: `endpoints` and
//! `endpointslice` (the pods and services they refer to), and any role with `attach_metadata`
//! (the nodes and namespaces whose labels the targets take). Each kind is listed and watched into
//! a store of its own (`kube`'s reflector); once every list is in, and after every change (at most
//! every 200 ms), the targets of every primary object are made again from the stores.

use super::endpoints::Lookup;
use super::{count_error, Shared, TargetLabels, Watched};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const META: &str = "__meta_kubernetes_";

/// What is watched: the role's objects and those its targets join (empty: not watched).
pub(super) struct Apis<P: Watched> {
    pub primary: super::Apis<P>,
    pub pods: super::Apis<Pod>,
    pub services: super::Apis<Service>,
    pub metadata: Metadata,
}

/// The watches `attach_metadata` asks for.
pub(super) struct Metadata {
    pub nodes: super::Apis<Node>,
    pub namespaces: super::Apis<Namespace>,
}

/// The stores of each kind, one per watched namespace.
struct Stores<P: Watched> {
    primary: Vec<Store<P>>,
    pods: Vec<Store<Pod>>,
    services: Vec<Store<Service>>,
    nodes: Vec<Store<Node>>,
    namespaces: Vec<Store<Namespace>>,
}

impl<P: Watched> Lookup for Stores<P> {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        let key = ObjectRef::new(name).within(namespace);
        self.pods.iter().find_map(|s| s.get(&key))
    }
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        let key = ObjectRef::new(name).within(namespace);
        self.services.iter().find_map(|s| s.get(&key))
    }
}

/// What a watch stream says: which stream, and whether its list just completed.
type Said = (usize, Result<bool, watcher::Error>);
type Streams = Vec<futures::stream::BoxStream<'static, Said>>;

fn reflect<K: Watched>(apis: super::Apis<K>, streams: &mut Streams) -> Vec<Store<K>> {
    let mut stores = Vec::new();
    for (_, api, config) in apis {
        let (reader, writer) = reflector::store::<K>();
        stores.push(reader);
        let index = streams.len();
        streams.push(
            reflector::reflector(writer, watcher(api, config).default_backoff())
                .map(move |e| (index, e.map(|e| matches!(e, watcher::Event::InitDone))))
                .boxed(),
        );
    }
    stores
}

/// Watches until stopped.
pub(super) async fn watch<P: Watched>(
    job: &str,
    apis: Apis<P>,
    shared: &Arc<Shared>,
    targets: fn(&P, &dyn Lookup) -> Vec<TargetLabels>,
) {
    let mut streams = Streams::new();
    let stores = Stores {
        primary: reflect(apis.primary, &mut streams),
        pods: reflect(apis.pods, &mut streams),
        services: reflect(apis.services, &mut streams),
        nodes: reflect(apis.metadata.nodes, &mut streams),
        namespaces: reflect(apis.metadata.namespaces, &mut streams),
    };
    let total = streams.len();
    let mut events = futures::stream::select_all(streams);
    let mut listed: HashSet<usize> = HashSet::new();
    let mut dirty = false;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            e = events.next() => match e {
                None => return,
                Some((index, Ok(init_done))) => {
                    if init_done {
                        listed.insert(index);
                    }
                    dirty = true;
                }
                Some((_, Err(e))) => {
                    count_error(job, "watch");
                    tracing::warn!(job, error = %e, "kubernetes watch failed; resuming");
                }
            },
            _ = tick.tick() => {
                if shared.stop.load(Ordering::Acquire) {
                    return;
                }
                if dirty && listed.len() == total {
                    dirty = false;
                    publish(shared, &stores, targets);
                }
            }
        }
    }
}

/// Makes every primary object's targets again; a change bumps the generation.
fn publish<P: Watched>(
    shared: &Shared,
    stores: &Stores<P>,
    targets: fn(&P, &dyn Lookup) -> Vec<TargetLabels>,
) {
    let mut all: BTreeMap<String, Vec<TargetLabels>> = BTreeMap::new();
    for store in &stores.primary {
        for object in store.state() {
            let mut made = targets(&object, stores);
            for t in &mut made {
                attach(t, stores);
            }
            all.insert(super::key(object.as_ref()), made);
        }
    }
    let mut current = shared.pods.lock().unwrap_or_else(|e| e.into_inner());
    if *current != all {
        *current = all;
        shared.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// `attach_metadata`: the labels of the target's node (`__meta_kubernetes_node_name`, labels and
/// annotations) and of its namespace (labels and annotations), when those are watched.
fn attach<P: Watched>(t: &mut TargetLabels, stores: &Stores<P>) {
    if !stores.nodes.is_empty() {
        let node = [
            "endpoint_node_name",
            "endpointslice_endpoint_node_name",
            "pod_node_name",
        ]
        .iter()
        .find_map(|k| {
            t.get(&format!("{META}{k}"))
                .filter(|v| !v.is_empty())
                .cloned()
        });
        let found = node.and_then(|name| {
            let key = ObjectRef::new(&name);
            stores.nodes.iter().find_map(|s| s.get(&key))
        });
        if let Some(node) = found {
            super::object_meta(t, "node", &node.metadata);
        }
    }
    if !stores.namespaces.is_empty() {
        let found = t.get(&format!("{META}namespace")).and_then(|name| {
            let key = ObjectRef::new(name);
            stores.namespaces.iter().find_map(|s| s.get(&key))
        });
        if let Some(ns) = found {
            let mut labels = TargetLabels::new();
            super::object_meta(&mut labels, "namespace", &ns.metadata);
            labels.remove(&format!("{META}namespace_name"));
            t.extend(labels);
        }
    }
}
