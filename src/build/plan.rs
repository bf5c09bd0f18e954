//! Turning a manifest and a target selection into the build DAG. Invariant: nodes are in
//! dependency order, every node's key is computed from its configuration and its
//! dependencies' keys before anything runs, and no two nodes share a key.

use super::fingerprint::Fingerprints;
use super::key::KeyBuilder;
use super::stage::emit::EmitWork;
use super::stage::export::ExportWork;
use super::stage::generate::{crate_name, GenerateWork};
use super::stage::import::{ImportWork, ModelBytes};
use super::stage::passes::PassesWork;
use super::stage::plan_memory::PlanWork;
use super::stage::publish::PublishWork;
use super::stage::report::{DeviceConfig, ReportWork};
use super::stage::select::SelectWork;
use super::stage::StageKind;
use super::{BuildError, Layout};
use crate::cache::Digest;
use crate::device::Device;
use crate::emit::EmitOptions;
use crate::manifest::{Manifest, OpSet, Profile};
use crate::memory::PlanOptions;
use std::collections::HashMap;
use std::path::Path;

/// One target to build, with the profile it builds with.
#[derive(Clone, Debug)]
pub struct Selected {
    pub target: String,
    pub device: Device,
    pub profile: Profile,
}

pub enum Work {
    Export(ExportWork),
    Import(ImportWork),
    Passes(PassesWork),
    Plan(Box<PlanWork>),
    Emit(Box<EmitWork>),
    Select(Box<SelectWork>),
    Generate(Box<GenerateWork>),
    Report(Box<ReportWork>),
    Publish(PublishWork),
}

pub struct Node {
    pub stage: StageKind,
    pub key: Digest,
    /// The package name, or the target's for per-target stages.
    pub name: String,
    /// The selected targets that need this node, in selection order.
    pub targets: Vec<String>,
    /// Indices of the nodes whose outputs this one reads, in the order the stage expects.
    pub deps: Vec<usize>,
    pub work: Work,
}

pub struct Plan {
    pub nodes: Vec<Node>,
    pub selected: Vec<Selected>,
}

impl Plan {
    /// Builds the DAG. Hashing the model (or the export step's inputs) is the only file
    /// reading done here, and `fingerprints` usually answers it from metadata alone.
    pub fn new(
        manifest: &Manifest,
        selected: Vec<Selected>,
        layout: &Layout,
        fingerprints: &mut Fingerprints,
    ) -> Result<Plan, BuildError> {
        let mut plan = Plan {
            nodes: Vec::new(),
            selected: Vec::new(),
        };
        let mut by_key: HashMap<Digest, usize> = HashMap::new();
        let root = &manifest.root;
        let rel = |p: &Path| relative(root, p);
        let digest = |fp: &mut Fingerprints, p: &Path| {
            fp.digest(p).map_err(|source| BuildError::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        let source_rel = rel(&manifest.model.source);

        // The model: an export step's output, or the file itself.
        let mut import_deps = Vec::new();
        let (model_field, model_bytes) = match &manifest.model.export {
            Some(export) => {
                let mut k = KeyBuilder::new(StageKind::Export.name(), StageKind::Export.version());
                k.json("command", &export.command);
                k.json("env", &export.env);
                for input in &export.inputs {
                    k.field("input", rel(input).as_bytes());
                    k.key("input-digest", &digest(fingerprints, input)?);
                }
                k.field("output", source_rel.as_bytes());
                let node = Node {
                    stage: StageKind::Export,
                    key: k.finish(),
                    name: manifest.package.name.clone(),
                    targets: Vec::new(),
                    deps: Vec::new(),
                    work: Work::Export(ExportWork {
                        command: export.command.clone(),
                        env: export
                            .env
                            .iter()
                            .map(|(a, b)| (a.clone(), b.clone()))
                            .collect(),
                        root: root.clone(),
                        output: manifest.model.source.clone(),
                        manifest: manifest.path.clone(),
                    }),
                };
                let key = node.key;
                import_deps.push(plan.add(node, &mut by_key));
                (
                    key,
                    ModelBytes::Exported {
                        path: manifest.model.source.clone(),
                    },
                )
            }
            None => {
                let d = digest(fingerprints, &manifest.model.source)?;
                (
                    d,
                    ModelBytes::File {
                        path: manifest.model.source.clone(),
                        digest: d,
                    },
                )
            }
        };

        let mut k = KeyBuilder::new(StageKind::Import.name(), StageKind::Import.version());
        k.key("model", &model_field);
        k.json("model-name", &manifest.model.name);
        k.json("inputs", &manifest.model.inputs);
        let import = plan.add(
            Node {
                stage: StageKind::Import,
                key: k.finish(),
                name: manifest.package.name.clone(),
                targets: Vec::new(),
                deps: import_deps,
                work: Work::Import(ImportWork {
                    source: model_bytes,
                    model_name: manifest.model.name.clone(),
                    inputs: manifest.model.inputs.clone(),
                    manifest: manifest.path.clone(),
                }),
            },
            &mut by_key,
        );

        for sel in &selected {
            // Graph passes depend on the profile's pass list only, so targets whose profiles
            // list the same graph passes share one node.
            let graph_passes: Vec<String> = sel
                .profile
                .passes
                .iter()
                .filter(|p| crate::passes::GRAPH_PASSES.contains(&p.as_str()))
                .cloned()
                .collect();
            let mut k = KeyBuilder::new(StageKind::Passes.name(), StageKind::Passes.version());
            k.key("import", &plan.nodes[import].key);
            k.json("passes", &graph_passes);
            let legalize_aten = sel.profile.ops == OpSet::Aten;
            k.json("legalize-aten", &legalize_aten);
            let passes = plan.add(
                Node {
                    stage: StageKind::Passes,
                    key: k.finish(),
                    name: sel.profile.name.clone(),
                    targets: Vec::new(),
                    deps: vec![import],
                    work: Work::Passes(PassesWork {
                        passes: graph_passes,
                        legalize_aten,
                    }),
                },
                &mut by_key,
            );

            let options = PlanOptions::from_profile(&sel.profile);
            let mut k = KeyBuilder::new(StageKind::Plan.name(), StageKind::Plan.version());
            k.key("passes", &plan.nodes[passes].key);
            k.json("device", &DeviceConfig::of(&sel.device));
            k.json("planner", &sel.profile.memory_planner);
            k.json(
                "aliasing",
                &[
                    options.alias_views,
                    options.in_place,
                    options.concat_in_place,
                ],
            );
            let memory = plan.add(
                Node {
                    stage: StageKind::Plan,
                    key: k.finish(),
                    name: sel.target.clone(),
                    targets: Vec::new(),
                    deps: vec![passes],
                    work: Work::Plan(Box::new(PlanWork {
                        device: sel.device.clone(),
                        options,
                    })),
                },
                &mut by_key,
            );

            // The program: the plan's key covers the graph, device and planner options; the
            // profile's op set is the only other thing emission reads.
            let mut k = KeyBuilder::new(StageKind::Emit.name(), StageKind::Emit.version());
            k.key("plan", &plan.nodes[memory].key);
            k.json("ops", &sel.profile.ops);
            let program = plan.add(
                Node {
                    stage: StageKind::Emit,
                    key: k.finish(),
                    name: sel.target.clone(),
                    targets: Vec::new(),
                    deps: vec![passes, memory],
                    work: Work::Emit(Box::new(EmitWork {
                        device: sel.device.clone(),
                        options,
                        emit: EmitOptions {
                            aten_only: sel.profile.ops == OpSet::Aten,
                        },
                    })),
                },
                &mut by_key,
            );

            // Kernel selection and generation read the kernel and runtime sources etpkg
            // embeds, so their digest joins both keys: a new etpkg with other kernels reselects.
            let sources = crate::generate::sources::digest();
            let mut k = KeyBuilder::new(StageKind::Select.name(), StageKind::Select.version());
            k.key("emit", &plan.nodes[program].key);
            k.json("device", &DeviceConfig::of(&sel.device));
            k.json("kernels", &sel.profile.kernels);
            k.key("sources", &sources);
            let selection = plan.add(
                Node {
                    stage: StageKind::Select,
                    key: k.finish(),
                    name: sel.target.clone(),
                    targets: Vec::new(),
                    deps: vec![program],
                    work: Work::Select(Box::new(SelectWork {
                        device: sel.device.clone(),
                        objective: sel.profile.kernels,
                    })),
                },
                &mut by_key,
            );

            let package = crate_name(&manifest.package.name, &sel.target);
            let mut k = KeyBuilder::new(StageKind::Generate.name(), StageKind::Generate.version());
            k.key("passes", &plan.nodes[passes].key);
            k.key("emit", &plan.nodes[program].key);
            k.key("select", &plan.nodes[selection].key);
            k.field("package", package.as_bytes());
            k.json("device", &DeviceConfig::of(&sel.device));
            k.json("kernels", &sel.profile.kernels);
            k.key("sources", &sources);
            k.json("threads", &sel.profile.threads);
            let runtime = plan.add(
                Node {
                    stage: StageKind::Generate,
                    key: k.finish(),
                    name: sel.target.clone(),
                    targets: Vec::new(),
                    deps: vec![passes, program, selection],
                    work: Work::Generate(Box::new(GenerateWork {
                        package,
                        device: sel.device.clone(),
                        objective: sel.profile.kernels,
                        threads: sel.profile.threads,
                    })),
                },
                &mut by_key,
            );

            let mut k = KeyBuilder::new(StageKind::Report.name(), StageKind::Report.version());
            k.key("import", &plan.nodes[import].key);
            k.key("passes", &plan.nodes[passes].key);
            k.key("plan", &plan.nodes[memory].key);
            k.key("emit", &plan.nodes[program].key);
            k.key("select", &plan.nodes[selection].key);
            k.json(
                "package",
                &(&manifest.package.name, &manifest.package.version),
            );
            k.field("target", sel.target.as_bytes());
            k.json("device", &DeviceConfig::of(&sel.device));
            k.json("profile", &sel.profile);
            k.field("model-source", source_rel.as_bytes());
            let report = plan.add(
                Node {
                    stage: StageKind::Report,
                    key: k.finish(),
                    name: sel.target.clone(),
                    targets: Vec::new(),
                    deps: vec![import, passes, memory, program, selection],
                    work: Work::Report(Box::new(ReportWork {
                        package: manifest.package.clone(),
                        target: sel.target.clone(),
                        device: sel.device.clone(),
                        profile: sel.profile.clone(),
                        model_source: source_rel.clone(),
                    })),
                },
                &mut by_key,
            );

            let mut k = KeyBuilder::new(StageKind::Publish.name(), StageKind::Publish.version());
            k.field("target", sel.target.as_bytes());
            k.field("input", b"report.json");
            k.key("input-key", &plan.nodes[report].key);
            k.field("input", b"program.pte");
            k.key("input-key", &plan.nodes[program].key);
            k.field("input", b"runtime/");
            k.key("input-key", &plan.nodes[runtime].key);
            let publish = plan.add(
                Node {
                    stage: StageKind::Publish,
                    key: k.finish(),
                    name: sel.target.clone(),
                    targets: Vec::new(),
                    deps: vec![report, program, runtime],
                    work: Work::Publish(PublishWork {
                        dir: layout.published(&sel.target),
                        staging: layout.staging(),
                        files: vec![
                            ("report.json".into(), 0, "report.json".into()),
                            ("program.pte".into(), 1, "program.pte".into()),
                        ],
                        bundles: vec![("runtime".into(), 2, "runtime".into())],
                    }),
                },
                &mut by_key,
            );
            plan.mark_needed(publish, &sel.target);
        }
        plan.selected = selected;
        Ok(plan)
    }

    /// Adds a node, or returns the existing node with the same key: that is how work shared
    /// between targets and profiles is done once.
    fn add(&mut self, node: Node, by_key: &mut HashMap<Digest, usize>) -> usize {
        if let Some(&i) = by_key.get(&node.key) {
            return i;
        }
        let i = self.nodes.len();
        by_key.insert(node.key, i);
        self.nodes.push(node);
        i
    }

    /// Records that `target` needs node `i` and everything it depends on.
    fn mark_needed(&mut self, i: usize, target: &str) {
        let mut stack = vec![i];
        while let Some(n) = stack.pop() {
            let node = &mut self.nodes[n];
            if !node.targets.iter().any(|t| t == target) {
                node.targets.push(target.to_string());
                stack.extend(node.deps.iter().copied());
            }
        }
    }

    /// The DAG in Graphviz's DOT language: one box per node, labelled with its stage, what it
    /// works on and its key's first digits, and an edge from each input to its consumer.
    pub fn to_dot(&self, fresh: &[bool]) -> String {
        let mut s = String::from("digraph etpkg {\n  rankdir=LR;\n  node [shape=box];\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let state = if fresh.get(i).copied().unwrap_or(false) {
                "fresh"
            } else {
                "dirty"
            };
            s.push_str(&format!(
                "  n{i} [label=\"{} {}\\n{}\\n{} ({})\"{}];\n",
                n.stage.name(),
                n.name,
                n.targets.join(", "),
                n.key.short(),
                state,
                if state == "fresh" { "" } else { ", style=bold" }
            ));
        }
        for (i, n) in self.nodes.iter().enumerate() {
            for d in &n.deps {
                s.push_str(&format!("  n{d} -> n{i};\n"));
            }
        }
        s.push_str("}\n");
        s
    }
}

/// `p` relative to the project root, with `/` separators, for keys and reports; paths outside
/// the project stay absolute.
pub fn relative(root: &Path, p: &Path) -> String {
    let Ok(r) = p.strip_prefix(root) else {
        return p.display().to_string();
    };
    r.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}
