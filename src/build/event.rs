//! What a build reports as it goes. Invariant: every node of a build's plan produces exactly
//! one of `fresh`, `finished` or `failed` (or nothing, when an earlier failure stopped the
//! build before it started), and `started` comes before `finished` or `failed`.

use crate::cache::OutputRef;
use serde::Serialize;
use std::time::Duration;

/// One node event, as `--message-format json` prints it: one object per line, with a
/// `reason` field in the manner of cargo's JSON messages.
#[derive(Clone, Debug, Serialize)]
pub struct NodeEvent {
    pub reason: Reason,
    /// The stage's name: `export`, `import`, `report`, `publish`.
    pub stage: &'static str,
    /// What the node works on: the package name, or the target for per-target stages.
    pub name: String,
    /// The targets whose outputs need this node; a node shared by several targets lists all.
    pub targets: Vec<String>,
    /// The node key, hex.
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The node's outputs were already in the cache (or published).
    Fresh,
    /// The node started running.
    Started,
    Finished,
    Failed,
    /// A cached output failed its digest check; the node that produced it will run again.
    CacheCorrupt,
}

/// The closing line of a build.
#[derive(Clone, Debug, Serialize)]
pub struct BuildFinished {
    pub reason: &'static str,
    pub success: bool,
    pub targets: Vec<String>,
    /// The profile each target built with, parallel to `targets`.
    pub profiles: Vec<String>,
    pub nodes: usize,
    pub ran: usize,
    pub fresh: usize,
    pub duration_ms: f64,
}

/// Receives events. The scheduler calls it from worker threads, one event at a time.
pub trait EventSink: Send {
    /// Called once before any node event: how many nodes the plan has and how many will run.
    fn plan(&mut self, _total: usize, _to_run: usize) {}
    fn node(&mut self, event: &NodeEvent);
    fn finished(&mut self, summary: &BuildFinished);
    /// A line for humans that is not a node event (waiting for a lock, say).
    fn note(&mut self, _status: &str, _message: &str) {}
}

pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
