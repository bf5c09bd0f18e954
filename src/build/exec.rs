//! Running a plan: deciding what is fresh, checking the cached outputs that stale nodes will
//! read, and running the rest on `-j` worker threads. Invariant: a node runs only after every
//! dependency's outputs are available and verified, and its outputs are in the cache before
//! any node that reads them starts.

use super::event::{millis, BuildFinished, EventSink, NodeEvent, Reason};
use super::plan::{Node, Plan, Work};
use super::stage::{self, Outputs, StageError, StageKind};
use super::BuildError;
use crate::cache::{ActionEntry, CacheError, OutputRef, Store};
use crate::ir::Backing;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

#[derive(Clone, Debug)]
enum Status {
    /// In the cache (or, for publish nodes, already published).
    Fresh(Option<ActionEntry>),
    Stale,
}

/// Which nodes are fresh, without reading any output: action entries and object sizes only.
fn freshness(plan: &Plan, store: &Store) -> Vec<Status> {
    plan.nodes
        .iter()
        .map(|n| match &n.work {
            Work::Publish(p) => {
                if stage::publish::is_fresh(&p.dir, &n.key) {
                    Status::Fresh(None)
                } else {
                    Status::Stale
                }
            }
            _ => match store.action(&n.key) {
                Some(e) if e.outputs.iter().all(|o| store.has_object(o)) => Status::Fresh(Some(e)),
                _ => Status::Stale,
            },
        })
        .collect()
}

/// Per-node status, for `etpkg graph`.
pub fn fresh_flags(plan: &Plan, store: &Store) -> Vec<bool> {
    freshness(plan, store)
        .iter()
        .map(|s| matches!(s, Status::Fresh(_)))
        .collect()
}

fn event(n: &Node, reason: Reason) -> NodeEvent {
    NodeEvent {
        reason,
        stage: n.stage.name(),
        name: n.name.clone(),
        targets: n.targets.clone(),
        key: n.key.hex(),
        duration_ms: None,
        outputs: Vec::new(),
        error: None,
    }
}

pub struct Stats {
    pub ran: usize,
    pub fresh: usize,
}

pub fn execute(
    plan: &Plan,
    store: &Store,
    jobs: usize,
    sink: &mut dyn EventSink,
) -> Result<Stats, BuildError> {
    let mut status = freshness(plan, store);
    let mut loaded: Vec<Option<Outputs>> = vec![None; plan.nodes.len()];

    // Stale nodes read their dependencies' outputs; check those now, so that a corrupt
    // object turns its producer stale before anything runs. Making a producer stale can make
    // its own inputs needed, hence the loop to a fixed point.
    loop {
        let mut changed = false;
        for i in 0..plan.nodes.len() {
            if !matches!(status[i], Status::Stale) {
                continue;
            }
            for &d in &plan.nodes[i].deps {
                let Status::Fresh(Some(entry)) = &status[d] else {
                    continue;
                };
                if loaded[d].is_some() {
                    continue;
                }
                match load(store, entry) {
                    Ok(out) => loaded[d] = Some(out),
                    Err(CacheError::Corrupt { .. }) | Err(CacheError::Missing { .. }) => {
                        let mut ev = event(&plan.nodes[d], Reason::CacheCorrupt);
                        ev.error = Some(format!(
                            "a cached output of this node failed its digest check in {}; \
                             the node will run again",
                            store.root().display()
                        ));
                        sink.node(&ev);
                        store.remove_action(&plan.nodes[d].key);
                        status[d] = Status::Stale;
                        changed = true;
                    }
                    Err(e) => return Err(BuildError::Cache(e)),
                }
            }
        }
        if !changed {
            break;
        }
    }

    let to_run = status.iter().filter(|s| matches!(s, Status::Stale)).count();
    sink.plan(plan.nodes.len(), to_run);
    let mut fresh = 0;
    for (i, s) in status.iter().enumerate() {
        if let Status::Fresh(_) = s {
            fresh += 1;
            sink.node(&event(&plan.nodes[i], Reason::Fresh));
        }
    }
    let stale: Vec<usize> = (0..plan.nodes.len())
        .filter(|&i| matches!(status[i], Status::Stale))
        .collect();
    let ran = stale.len();

    let state = Mutex::new(State {
        pending: stale,
        done: status
            .iter()
            .map(|s| matches!(s, Status::Fresh(_)))
            .collect(),
        loaded,
        running: 0,
        failure: None,
        sink,
    });
    let wake = Condvar::new();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| worker(plan, store, &state, &wake));
        }
    });
    let state = state.into_inner().expect("a worker panicked");
    match state.failure {
        Some(e) => Err(e),
        None => Ok(Stats { ran, fresh }),
    }
}

struct State<'s> {
    /// Stale nodes not yet started, in plan (dependency) order.
    pending: Vec<usize>,
    done: Vec<bool>,
    loaded: Vec<Option<Outputs>>,
    running: usize,
    failure: Option<BuildError>,
    sink: &'s mut dyn EventSink,
}

fn worker(plan: &Plan, store: &Store, state: &Mutex<State>, wake: &Condvar) {
    loop {
        let mut st = state.lock().unwrap();
        let (i, inputs) = loop {
            // After a failure no new node starts; the ones running finish and are cached.
            if st.failure.is_some() || (st.pending.is_empty()) {
                wake.notify_all();
                return;
            }
            let ready = st
                .pending
                .iter()
                .position(|&n| plan.nodes[n].deps.iter().all(|&d| st.done[d]));
            if let Some(pos) = ready {
                let i = st.pending.remove(pos);
                let inputs: Vec<Outputs> = plan.nodes[i]
                    .deps
                    .iter()
                    .map(|&d| st.loaded[d].clone().unwrap_or_default())
                    .collect();
                st.running += 1;
                st.sink.node(&event(&plan.nodes[i], Reason::Started));
                break (i, inputs);
            }
            st = wake.wait(st).unwrap();
        };
        drop(st);

        let node = &plan.nodes[i];
        let start = Instant::now();
        let result = run_node(node, store, &inputs);
        let elapsed = start.elapsed();

        let mut st = state.lock().unwrap();
        st.running -= 1;
        match result {
            Ok((refs, outputs)) => {
                let mut ev = event(node, Reason::Finished);
                ev.duration_ms = Some(millis(elapsed));
                ev.outputs = refs;
                st.sink.node(&ev);
                st.loaded[i] = Some(outputs);
                st.done[i] = true;
            }
            Err(e) => {
                let mut ev = event(node, Reason::Failed);
                ev.duration_ms = Some(millis(elapsed));
                ev.error = Some(e.to_string());
                st.sink.node(&ev);
                if st.failure.is_none() {
                    st.failure = Some(BuildError::Stage {
                        stage: node.stage.name(),
                        name: node.name.clone(),
                        targets: node.targets.clone(),
                        source: Box::new(e),
                    });
                }
            }
        }
        wake.notify_all();
    }
}

fn load(store: &Store, entry: &ActionEntry) -> Result<Outputs, CacheError> {
    let mut out = BTreeMap::new();
    for o in &entry.outputs {
        out.insert(o.name.clone(), store.read_object(&o.digest)?);
    }
    Ok(out)
}

/// Runs one node's stage and, for cached stages, stores its outputs and action entry.
fn run_node(
    node: &Node,
    store: &Store,
    inputs: &[Outputs],
) -> Result<(Vec<OutputRef>, Outputs), StageError> {
    let deps: Vec<&Outputs> = inputs.iter().collect();
    let produced = match &node.work {
        Work::Export(w) => stage::export::run(w)?,
        Work::Import(w) => stage::import::run(w, &deps)?,
        Work::Passes(w) => stage::passes::run(w, &deps)?,
        Work::Plan(w) => stage::plan_memory::run(w, &deps)?,
        Work::Emit(w) => stage::emit::run(w, &deps)?,
        Work::Select(w) => stage::select::run(w, &deps)?,
        Work::Generate(w) => stage::generate::run(w, &deps)?,
        Work::Report(w) => stage::report::run(w, &deps)?,
        Work::Publish(w) => stage::publish::run(w, &node.key, &deps)?,
    };
    if node.stage == StageKind::Publish {
        return Ok((Vec::new(), BTreeMap::new()));
    }
    let mut refs = Vec::new();
    let mut outputs = BTreeMap::new();
    for (name, bytes) in produced {
        refs.push(store.put_object(&name, &bytes)?);
        outputs.insert(name, Arc::new(Backing::Owned(bytes)));
    }
    store.put_action(
        &node.key,
        &ActionEntry {
            stage: node.stage.name().to_string(),
            outputs: refs.clone(),
        },
    )?;
    Ok((refs, outputs))
}

/// The closing event of a build.
pub fn finished(plan: &Plan, stats: Option<&Stats>, start: Instant) -> BuildFinished {
    BuildFinished {
        reason: "build-finished",
        success: stats.is_some(),
        targets: plan.selected.iter().map(|s| s.target.clone()).collect(),
        profiles: plan
            .selected
            .iter()
            .map(|s| s.profile.name.clone())
            .collect(),
        nodes: plan.nodes.len(),
        ran: stats.map_or(0, |s| s.ran),
        fresh: stats.map_or(0, |s| s.fresh),
        duration_ms: millis(start.elapsed()),
    }
}
