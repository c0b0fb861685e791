//! The `endpoints` and `endpointslice` roles' watch: the endpoints (or slices), and the pods and
//! services they refer to, each kind
//! listed and watched into a store of its own (`kube`'s reflector); once every list is in, and
//! after every change (at most every 200 ms), the targets of every endpoints object (or slice) are
//! made again from the three stores.

use super::endpoints::Lookup;
use super::{count_error, Apis, Shared, TargetLabels, Watched};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The stores of each kind, one per watched namespace.
struct Stores<P: Watched> {
    endpoints: Vec<Store<P>>,
    pods: Vec<Store<Pod>>,
    services: Vec<Store<Service>>,
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

fn reflect<K: Watched>(
    apis: Apis<K>,
    first: usize,
) -> (
    Vec<Store<K>>,
    Vec<futures::stream::BoxStream<'static, Said>>,
) {
    let mut stores = Vec::new();
    let mut streams = Vec::new();
    for (i, (_, api, config)) in apis.into_iter().enumerate() {
        let (reader, writer) = reflector::store::<K>();
        stores.push(reader);
        let index = first + i;
        streams.push(
            reflector::reflector(writer, watcher(api, config).default_backoff())
                .map(move |e| (index, e.map(|e| matches!(e, watcher::Event::InitDone))))
                .boxed(),
        );
    }
    (stores, streams)
}

/// Watches until stopped.
pub(super) async fn watch<P: Watched>(
    job: &str,
    apis: (Apis<P>, Apis<Pod>, Apis<Service>),
    shared: &Arc<Shared>,
    targets: fn(&P, &dyn Lookup) -> Vec<TargetLabels>,
) {
    let (endpoints, pods, services) = apis;
    let (ep_stores, mut streams) = reflect(endpoints, 0);
    let (pod_stores, more) = reflect(pods, streams.len());
    streams.extend(more);
    let (svc_stores, more) = reflect(services, streams.len());
    streams.extend(more);
    let total = streams.len();
    let stores = Stores {
        endpoints: ep_stores,
        pods: pod_stores,
        services: svc_stores,
    };
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

/// Makes every endpoints object's targets again; a change bumps the generation.
fn publish<P: Watched>(
    shared: &Shared,
    stores: &Stores<P>,
    targets: fn(&P, &dyn Lookup) -> Vec<TargetLabels>,
) {
    let mut all: BTreeMap<String, Vec<TargetLabels>> = BTreeMap::new();
    for store in &stores.endpoints {
        for ep in store.state() {
            all.insert(super::key(ep.as_ref()), targets(&ep, stores));
        }
    }
    let mut current = shared.pods.lock().unwrap_or_else(|e| e.into_inner());
    if *current != all {
        *current = all;
        shared.generation.fetch_add(1, Ordering::AcqRel);
    }
}
