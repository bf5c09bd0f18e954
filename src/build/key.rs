//! Node keys: what identifies a stage's work. Invariant: a key is a blake3 digest of
//! length-prefixed, labelled fields only, so two nodes share a key exactly when every field
//! below is equal; `std::hash::Hash` never enters a key.
//!
//! Everything that enters a key, per stage:
//!
//! | stage   | fields (in this order, after `tool` = etpkg's version and `stage` = name, version) |
//! |---------|--------------------------------------------------------------------------------------|
//! | export  | `command` (argv), `env` (sorted pairs), `input` (path relative to the project, blake3 of its bytes) per declared input, `output` (the `.pt2` path relative to the project) |
//! | import  | `model` (blake3 of the `.pt2` bytes, or the export node's key), `model-name` (which model in the archive, or none), `inputs` (the manifest's declared input shapes and dtypes) |
//! | passes  | `import` (the import node's key), `passes` (the profile's graph passes, in order; memory-planning names are left out), `legalize-aten` (whether the profile's `ops` is `aten`, which splits fused ops after the fixed point) |
//! | plan    | `passes` (the passes node's key), `device` (canonical JSON of the resolved device), `planner` (the profile's `memory-planner`), `aliasing` (whether `alias-views`, `in-place`, `concat-in-place` are in the profile's passes) |
//! | emit    | `plan` (the plan node's key, which covers the graph, device and planner options), `ops` (the profile's op set) |
//! | report  | `import`, `passes`, `plan`, `emit` (those nodes' keys), `package` (name, version), `target` (name), `device` (canonical JSON of the resolved device: triple, ISA features, regions, alignment, std), `profile` (canonical JSON of the resolved profile: name, passes, memory planner, kernels, ops, threads) |
//! | generate | `passes`, `emit`, `select` (those nodes' keys), `package` (the crate's name), `device`, `kernels` (the profile's objective), `sources` (digest of the embedded runtime and kernel sources), `threads` (the profile's thread count, the crate's `THREADS`) |
//! | publish | `target` (name), one `input` per published file (`report.json`, `program.pte`: file name, producing node's key) |
//!
//! The project's location never enters a key, so that projects in different folders, or CI
//! machines sharing `ETPKG_CACHE_DIR`, share cache entries. Stages that land later (kernel
//! selection, crate generation) add rows here: their key is their configuration plus
//! the keys of the nodes whose outputs they read.

use crate::cache::Digest;

/// The tool's version enters every key, so that outputs never outlive the code that made them
/// across releases; each stage also carries its own version for changes between releases.
pub const TOOL: &str = env!("CARGO_PKG_VERSION");

/// Accumulates the fields of one key.
pub struct KeyBuilder {
    hasher: blake3::Hasher,
}

impl KeyBuilder {
    pub fn new(stage: &str, version: u32) -> KeyBuilder {
        let mut k = KeyBuilder {
            hasher: blake3::Hasher::new(),
        };
        k.field("tool", TOOL.as_bytes());
        k.field("stage", stage.as_bytes());
        k.field("version", &version.to_le_bytes());
        k
    }

    /// Adds one labelled field. Label and value are length-prefixed, so no two different
    /// sequences of fields hash the same bytes.
    pub fn field(&mut self, label: &str, value: &[u8]) -> &mut Self {
        self.hasher.update(&(label.len() as u64).to_le_bytes());
        self.hasher.update(label.as_bytes());
        self.hasher.update(&(value.len() as u64).to_le_bytes());
        self.hasher.update(value);
        self
    }

    pub fn key(&mut self, label: &str, key: &Digest) -> &mut Self {
        self.field(label, &key.0)
    }

    /// Adds a value as canonical JSON: serde_json writes struct fields in declaration order
    /// and the manifest's maps are `BTreeMap`s, so equal configurations give equal bytes.
    pub fn json<T: serde::Serialize>(&mut self, label: &str, value: &T) -> &mut Self {
        let bytes = serde_json::to_vec(value).expect("key configuration serializes");
        self.field(label, &bytes)
    }

    pub fn finish(&self) -> Digest {
        Digest(*self.hasher.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_unambiguous() {
        let a = KeyBuilder::new("s", 1).field("a", b"bc").finish();
        let b = KeyBuilder::new("s", 1).field("ab", b"c").finish();
        let c = KeyBuilder::new("s", 2).field("a", b"bc").finish();
        let a2 = KeyBuilder::new("s", 1).field("a", b"bc").finish();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, a2);
    }
}
