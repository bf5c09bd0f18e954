//! `etpkg build` end to end, through the binary, on temporary project folders. Node counts come
//! from `--message-format json` events; outputs are compared byte for byte.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_etpkg");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
        .join("export.pt2")
}

/// A throwaway project directory with its own cache.
struct Project {
    dir: PathBuf,
}

impl Project {
    fn new(name: &str) -> Project {
        let dir = std::env::temp_dir().join(format!("etpkg-build-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("models")).unwrap();
        Project { dir }
    }

    fn with_model(name: &str, fixture_name: &str, manifest: &str) -> Project {
        let p = Project::new(name);
        fs::copy(fixture(fixture_name), p.dir.join("models/m.pt2")).unwrap();
        p.write_manifest(manifest);
        p
    }

    fn write_manifest(&self, text: &str) {
        fs::write(self.dir.join("ExecuTorch.toml"), text).unwrap();
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(&self.dir)
            .env_remove("ETPKG_CACHE_DIR");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs a JSON build that must succeed and returns its events.
    fn build(&self, extra: &[&str]) -> Events {
        let mut args = vec!["build", "--message-format", "json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Events::parse(&out.stdout)
    }

    /// Every published file, by path relative to `target/etpkg`.
    fn published(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let root = self.dir.join("target/etpkg");
        // A build killed early may not have created the directory yet.
        let Ok(entries) = fs::read_dir(&root) else {
            return out;
        };
        for t in entries.flatten() {
            let name = t.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // The generated runtime crate is a directory tree: walk it.
            let mut stack = vec![(t.path(), name.clone())];
            while let Some((dir, prefix)) = stack.pop() {
                for f in fs::read_dir(&dir).unwrap().flatten() {
                    let fname = f.file_name().to_string_lossy().into_owned();
                    let key = format!("{prefix}/{fname}");
                    if f.file_type().unwrap().is_dir() {
                        stack.push((f.path(), key));
                    } else {
                        out.insert(key, fs::read(f.path()).unwrap());
                    }
                }
            }
        }
        out
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

struct Events(Vec<Value>);

impl Events {
    fn parse(stdout: &[u8]) -> Events {
        Events(
            String::from_utf8_lossy(stdout)
                .lines()
                .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
                .collect(),
        )
    }

    /// `stage name` of every event with this reason, sorted.
    fn with(&self, reason: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .iter()
            .filter(|e| e["reason"] == reason)
            .map(|e| {
                format!(
                    "{} {}",
                    e["stage"].as_str().unwrap(),
                    e["name"].as_str().unwrap()
                )
            })
            .collect();
        v.sort();
        v
    }

    fn summary(&self) -> &Value {
        self.0.last().unwrap()
    }
}

const THREE_TARGETS: &str = r#"
[package]
name = "net"
version = "0.1.0"

[model]
source = "models/m.pt2"

[profile.small]
inherits = "release"
kernels = "size"
memory-planner = "greedy-by-size"

[target.host]
device = "host"

[target.x86]
device = "x86_64-v3"

[target.mcu]
device = "cortex-m7"
profile = "small"
"#;

#[test]
fn second_build_is_all_fresh() {
    let p = Project::with_model("fresh", "classifier", THREE_TARGETS);
    let first = p.build(&[]);
    // One import and one set of graph passes shared by three targets (their profiles list
    // the same graph passes), then a memory plan, a program, a kernel selection, a runtime
    // crate, a report and a publish per target.
    assert_eq!(
        first.with("finished"),
        [
            "emit host",
            "emit mcu",
            "emit x86",
            "generate host",
            "generate mcu",
            "generate x86",
            "import net",
            "passes release",
            "plan host",
            "plan mcu",
            "plan x86",
            "publish host",
            "publish mcu",
            "publish x86",
            "report host",
            "report mcu",
            "report x86",
            "select host",
            "select mcu",
            "select x86"
        ]
    );
    assert_eq!(first.summary()["ran"], 20);
    // Each target's runtime crate is published beside its program.
    for t in ["host", "mcu", "x86"] {
        assert!(p
            .dir
            .join(format!("target/etpkg/{t}/runtime/Cargo.toml"))
            .is_file());
    }
    // The published program is a valid ExecuTorch program, and the report describes it.
    let pte = fs::read(p.dir.join("target/etpkg/host/program.pte")).unwrap();
    let program = etpkg::rt::pte::Program::parse(&pte).unwrap();
    let forward = program.plan_named("forward").unwrap();
    let report: Value =
        serde_json::from_slice(&fs::read(p.dir.join("target/etpkg/host/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["program"]["bytes"], pte.len());
    assert_eq!(
        report["program"]["instructions"],
        forward.instructions_len()
    );
    assert_eq!(
        report["program"]["operators"].as_array().unwrap().len(),
        forward.operators_len()
    );
    let second = p.build(&[]);
    assert!(second.with("started").is_empty());
    assert_eq!(second.with("fresh").len(), 20);
    assert_eq!(second.summary()["fresh"], 20);
}

#[test]
fn a_node_shared_by_targets_runs_once() {
    let p = Project::with_model("shared", "conv1d_net", THREE_TARGETS);
    let ev = p.build(&[]);
    let imports: Vec<&Value> =
        ev.0.iter()
            .filter(|e| e["stage"] == "import" && e["reason"] == "finished")
            .collect();
    assert_eq!(imports.len(), 1);
    assert_eq!(
        imports[0]["targets"],
        serde_json::json!(["host", "mcu", "x86"])
    );
    let passes: Vec<&Value> =
        ev.0.iter()
            .filter(|e| e["stage"] == "passes" && e["reason"] == "finished")
            .collect();
    assert_eq!(passes.len(), 1);
    assert_eq!(
        passes[0]["targets"],
        serde_json::json!(["host", "mcu", "x86"])
    );
}

#[test]
fn new_model_bytes_rebuild_everything_downstream_of_import() {
    let p = Project::with_model("touch", "classifier", THREE_TARGETS);
    p.build(&[]);
    // A new modification time with the same bytes changes nothing: keys are content digests.
    let model = p.dir.join("models/m.pt2");
    fs::File::options()
        .write(true)
        .open(&model)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    assert!(p.build(&[]).with("started").is_empty());
    fs::copy(fixture("conv1d_net"), &model).unwrap();
    let ev = p.build(&[]);
    assert_eq!(ev.with("finished").len(), 20, "{:?}", ev.with("finished"));
    let report: Value =
        serde_json::from_slice(&fs::read(p.dir.join("target/etpkg/mcu/report.json")).unwrap())
            .unwrap();
    assert!(report["model"]["core_ops"]["conv"].as_u64().unwrap() >= 1);
}

#[test]
fn changing_one_targets_profile_rebuilds_only_that_target() {
    let p = Project::with_model("profile", "classifier", THREE_TARGETS);
    p.build(&[]);
    p.write_manifest(&THREE_TARGETS.replace("kernels = \"size\"", "kernels = \"speed\""));
    let ev = p.build(&[]);
    // Only the kernel objective changed: selection and generation run again for that target,
    // and import, passes, planning and emission stay fresh.
    assert_eq!(
        ev.with("finished"),
        ["generate mcu", "publish mcu", "report mcu", "select mcu"]
    );
    assert_eq!(ev.with("fresh").len(), 16);
    let report: Value =
        serde_json::from_slice(&fs::read(p.dir.join("target/etpkg/mcu/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["profile"]["kernels"], "speed");
    // `--profile` on the command line applies to every selected target.
    // A planner setting re-plans that target only.
    p.write_manifest(&THREE_TARGETS.replace("greedy-by-size", "greedy-by-conflicts"));
    let ev = p.build(&[]);
    assert_eq!(
        ev.with("finished"),
        [
            "emit mcu",
            "generate mcu",
            "plan mcu",
            "publish mcu",
            "report mcu",
            "select mcu"
        ]
    );
    let ev = p.build(&["--profile", "small", "--target", "host"]);
    assert_eq!(
        ev.with("finished"),
        [
            "emit host",
            "generate host",
            "plan host",
            "publish host",
            "report host",
            "select host"
        ]
    );
}

#[test]
fn a_corrupt_cache_object_is_detected_and_rebuilt() {
    let p = Project::with_model("corrupt", "classifier", THREE_TARGETS);
    let first = p.build(&[]);
    let reference = p.published();
    let import = first
        .0
        .iter()
        .find(|e| e["stage"] == "import" && e["reason"] == "finished")
        .unwrap();
    // Damage every object the import produced.
    for o in import["outputs"].as_array().unwrap() {
        let d = o["digest"].as_str().unwrap();
        let path = p
            .dir
            .join("target/etpkg-cache/objects")
            .join(&d[..2])
            .join(d);
        let mut bytes = fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        fs::write(&path, bytes).unwrap();
    }
    // A fresh build reads nothing, so it notices nothing; a report that must run reads the
    // import's outputs, finds them corrupt, and the import runs again first.
    p.write_manifest(&THREE_TARGETS.replace("kernels = \"size\"", "kernels = \"speed\""));
    let ev = p.build(&[]);
    assert_eq!(ev.with("cache-corrupt"), ["import net"]);
    assert_eq!(
        ev.with("finished"),
        [
            "generate mcu",
            "import net",
            "publish mcu",
            "report mcu",
            "select mcu"
        ]
    );
    p.write_manifest(THREE_TARGETS);
    let ev = p.build(&[]);
    assert!(ev.with("cache-corrupt").is_empty());
    assert_eq!(p.published(), reference);
}

#[test]
fn a_failing_stage_leaves_published_outputs_untouched() {
    let p = Project::with_model("failing", "classifier", THREE_TARGETS);
    p.build(&[]);
    let before = p.published();
    let model = p.dir.join("models/m.pt2");
    let mut bytes = fs::read(&model).unwrap();
    bytes.truncate(bytes.len() / 2);
    fs::write(&model, bytes).unwrap();
    let out = p.run(&["build"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("import of `net` failed"), "{err}");
    assert!(err.contains("m.pt2"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(p.published(), before);
    // JSON mode reports the failure as an event naming the error.
    let out = p.run(&["build", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let ev = Events::parse(&out.stdout);
    assert_eq!(ev.with("failed"), ["import net"]);
    assert_eq!(ev.summary()["success"], false);
}

/// A project whose model comes from an export step that takes a while, which widens the window
/// in which a kill lands mid-build.
fn export_project(name: &str) -> Project {
    let p = Project::new(name);
    fs::create_dir_all(p.dir.join("src")).unwrap();
    fs::copy(fixture("mobilenet_v2"), p.dir.join("src/weights.pt2")).unwrap();
    fs::write(
        p.dir.join("src/export.sh"),
        "sleep 0.2\ncp src/weights.pt2 models/m.pt2\necho ran >> export.log\n",
    )
    .unwrap();
    p.write_manifest(&format!(
        "{}\n[model.export]\ncommand = [\"sh\", \"src/export.sh\"]\ninputs = [\"src/export.sh\", \"src/weights.pt2\"]\n",
        THREE_TARGETS
    ));
    p
}

#[test]
fn the_export_step_runs_only_when_its_command_or_inputs_change() {
    let p = export_project("export");
    let runs = || {
        fs::read_to_string(p.dir.join("export.log"))
            .unwrap()
            .lines()
            .count()
    };
    let ev = p.build(&[]);
    assert_eq!(ev.with("finished").len(), 21);
    assert_eq!(runs(), 1);
    assert!(p.build(&[]).with("started").is_empty());
    fs::write(p.dir.join("unrelated.txt"), "x").unwrap();
    assert!(p.build(&[]).with("started").is_empty());
    // The written model is not an input of anything once exported: the cached export is.
    fs::remove_file(p.dir.join("models/m.pt2")).unwrap();
    assert!(p.build(&[]).with("started").is_empty());
    assert_eq!(runs(), 1);
    // Changing a declared input re-runs the export; the same model bytes come out, and the
    // import's key (the export node's key) changes with it.
    fs::write(
        p.dir.join("src/export.sh"),
        "sleep 0.1\ncp src/weights.pt2 models/m.pt2\necho ran >> export.log\n",
    )
    .unwrap();
    let ev = p.build(&[]);
    assert!(ev.with("finished").contains(&"export net".to_string()));
    assert_eq!(runs(), 2);
}

#[test]
fn a_killed_build_then_rebuilt_matches_an_uninterrupted_one() {
    let reference = export_project("kill-ref");
    reference.build(&[]);
    let expected = reference.published();

    let p = export_project("kill");
    // Kill at several points: during the export, during import, and around publishing.
    for delay_ms in [5u64, 120, 230, 260, 300, 400] {
        let mut child = p
            .cmd(&["build", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Whatever was published is a complete earlier build, never a partial one.
        for (path, bytes) in p.published() {
            if path.ends_with("report.json") {
                assert_eq!(
                    Some(&bytes),
                    expected.get(&path),
                    "{path} after kill at {delay_ms} ms"
                );
            }
        }
    }
    // The export's child may still be running; let it finish before the final build.
    std::thread::sleep(Duration::from_millis(400));
    p.build(&[]);
    assert_eq!(p.published(), expected);
    assert!(p.build(&[]).with("started").is_empty());
    // Half-written publish directories of the killed builds are gone.
    let staging = p.dir.join("target/etpkg/.staging");
    assert!(!staging.exists() || fs::read_dir(&staging).unwrap().next().is_none());
}

#[test]
fn two_builds_at_once_both_succeed_with_identical_outputs() {
    let reference = Project::with_model("conc-ref", "mobilenet_v2", THREE_TARGETS);
    reference.build(&[]);
    let expected = reference.published();
    let p = Project::with_model("conc", "mobilenet_v2", THREE_TARGETS);
    let children: Vec<_> = (0..2)
        .map(|_| {
            p.cmd(&["build", "--message-format", "json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ran = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ran.push(
            Events::parse(&out.stdout).summary()["ran"]
                .as_u64()
                .unwrap(),
        );
    }
    // The build lock serializes them: one does the work, the other finds it fresh.
    ran.sort();
    assert_eq!(ran, [0, 20]);
    assert_eq!(p.published(), expected);
}

#[test]
fn a_shared_cache_dir_serves_a_second_project() {
    let cache = std::env::temp_dir().join(format!("etpkg-shared-cache-{}", std::process::id()));
    let _ = fs::remove_dir_all(&cache);
    let a = Project::with_model("share-a", "classifier", THREE_TARGETS);
    let b = Project::with_model("share-b", "classifier", THREE_TARGETS);
    let build = |p: &Project| {
        let out = p
            .cmd(&["build", "--message-format", "json"])
            .env("ETPKG_CACHE_DIR", &cache)
            .output()
            .unwrap();
        assert!(out.status.success());
        Events::parse(&out.stdout)
    };
    assert_eq!(build(&a).with("finished").len(), 20);
    // The second project finds every cached node in the shared store and only publishes.
    assert_eq!(
        build(&b).with("finished"),
        ["publish host", "publish mcu", "publish x86"]
    );
    assert_eq!(a.published(), b.published());
    let _ = fs::remove_dir_all(&cache);
}

#[test]
fn clean_removes_outputs_and_cache() {
    let p = Project::with_model("clean", "classifier", THREE_TARGETS);
    p.build(&[]);
    let out = p.run(&["clean", "--target", "mcu"]);
    assert!(out.status.success());
    assert!(!p.dir.join("target/etpkg/mcu").exists());
    assert_eq!(p.build(&[]).with("finished"), ["publish mcu"]);
    assert!(p.run(&["clean"]).status.success());
    assert!(!p.dir.join("target/etpkg/host").exists());
    assert!(p.dir.join("target/etpkg-cache/objects").exists());
    assert_eq!(p.build(&[]).with("finished").len(), 3);
    assert!(p.run(&["clean", "--cache"]).status.success());
    assert!(!p.dir.join("target/etpkg-cache").exists());
    assert_eq!(p.build(&[]).with("finished").len(), 20);
}

#[test]
fn graph_prints_the_dag_as_dot() {
    let p = Project::with_model("graph", "classifier", THREE_TARGETS);
    let dot = |p: &Project| String::from_utf8(p.run(&["graph"]).stdout).unwrap();
    let before = dot(&p);
    assert!(before.starts_with("digraph etpkg {"));
    // Per target: passes → plan; passes and plan → emit; emit → select; passes, emit and
    // select → generate; import, passes, plan, emit and select → report; report, emit and
    // generate → publish (15 edges); plus import → passes once.
    assert_eq!(before.matches("->").count(), 46);
    assert_eq!(before.matches("(dirty)").count(), 20);
    p.build(&[]);
    assert_eq!(dot(&p).matches("(fresh)").count(), 20);
}

#[test]
fn init_creates_a_project_that_asks_for_its_model() {
    let p = Project::new("init");
    let dir = p.dir.join("my-app");
    let out = p.run(&["init", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        "/target\n"
    );
    let again = p.run(&["init", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    let out = p.run(&[
        "build",
        "--manifest-path",
        dir.join("ExecuTorch.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("models/my-app.pt2"), "{err}");
    fs::copy(fixture("classifier"), dir.join("models/my-app.pt2")).unwrap();
    let out = p.run(&[
        "build",
        "--manifest-path",
        dir.join("ExecuTorch.toml").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("target/etpkg/host/report.json").exists());
}

#[test]
fn unknown_target_and_profile_are_errors_with_suggestions() {
    let p = Project::with_model("select", "classifier", THREE_TARGETS);
    let out = p.run(&["build", "--target", "mcuu"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `mcu`?"));
    let out = p.run(&["build", "--profile", "smal"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `small`?"));
    // A built-in device name that is not a declared target builds as an ad-hoc target.
    let ev = p.build(&["--target", "aarch64-linux"]);
    assert_eq!(ev.with("finished").len(), 8);
    assert!(p
        .dir
        .join("target/etpkg/aarch64-linux/report.json")
        .exists());
    assert!(p
        .dir
        .join("target/etpkg/aarch64-linux/program.pte")
        .exists());
}

#[test]
fn targets_lists_the_built_in_devices() {
    let out = Command::new(BIN).arg("targets").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for d in [
        "host",
        "x86_64",
        "x86_64-v3",
        "x86_64-v4",
        "aarch64-linux",
        "cortex-m7",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{d} "))),
            "{d} missing:\n{text}"
        );
    }
}

#[test]
fn a_failing_or_torn_export_is_an_error_that_names_the_command() {
    let p = Project::new("export-fail");
    fs::write(
        p.dir.join("export.sh"),
        "echo 'Traceback: boom' >&2\nexit 3\n",
    )
    .unwrap();
    p.write_manifest(&format!(
        "{THREE_TARGETS}\n[model.export]\ncommand = [\"sh\", \"export.sh\"]\ninputs = [\"export.sh\"]\n"
    ));
    let out = p.run(&["build"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the export command `sh export.sh`"), "{err}");
    assert!(err.contains("Traceback: boom"), "{err}");
    // A command that writes something that is not a whole archive is refused, not cached.
    fs::write(
        p.dir.join("export.sh"),
        "printf 'PK\\003\\004torn' > models/m.pt2\n",
    )
    .unwrap();
    let out = p.run(&["build"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a complete .pt2 archive"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn inspect_shows_the_plan_against_its_lower_bound() {
    let p = Project::with_model("inspect", "classifier", THREE_TARGETS);
    let out = p.run(&["inspect", "--target", "host"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `etpkg build --target host` first"));
    p.build(&[]);
    let out = p.run(&["inspect", "--target", "mcu"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("batch_norm"), "{text}");
    assert!(text.contains("lower bound"), "{text}");
    let out = p.run(&["inspect", "--target", "host", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Passes folded every batch norm of the classifier into its convolution.
    assert!(v["ops_before"]["batch_norm"].as_u64().unwrap() > 0);
    assert!(v["ops_after"].get("batch_norm").is_none());
    let regions = v["memory"]["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 1);
    let planned = regions[0]["planned_bytes"].as_u64().unwrap();
    let bound = regions[0]["lower_bound"].as_u64().unwrap();
    assert!(bound > 0 && planned >= bound && planned as f64 <= 1.02 * bound as f64);
}

#[test]
fn a_model_too_big_for_the_device_is_an_error_naming_the_region() {
    let manifest = THREE_TARGETS.replace(
        "profile = \"small\"",
        "profile = \"small\"\nmemory = { dtcm = \"4KiB\", sram = \"16KiB\" }",
    );
    let p = Project::with_model("too-big", "classifier", &manifest);
    let out = p.run(&["build"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plan of `mcu` failed"), "{err}");
    assert!(err.contains("memory region `sram`"), "{err}");
    assert!(err.contains("the peak is at step"), "{err}");
    assert!(err.contains("help:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

const ATEN_PROFILE: &str = r#"
[package]
name = "net"
version = "0.1.0"

[model]
source = "models/m.pt2"

[profile.stock]
inherits = "release"
ops = "aten"

[target.host]
device = "host"
profile = "stock"
"#;

#[test]
fn an_aten_only_profile_emits_aten_operators_or_says_which_op_is_not() {
    // mobilenet_v2's release graph fuses convolutions with clamps; `ops = "aten"` splits them
    // again after the passes, so every operator is ATen's.
    let p = Project::with_model("aten", "mobilenet_v2", ATEN_PROFILE);
    p.build(&[]);
    let report: Value =
        serde_json::from_slice(&fs::read(p.dir.join("target/etpkg/host/report.json")).unwrap())
            .unwrap();
    let ops = report["program"]["operators"].as_array().unwrap();
    assert!(!ops.is_empty());
    assert!(
        ops.iter()
            .all(|o| o.as_str().unwrap().starts_with("aten::")),
        "{ops:?}"
    );
    let changes = report["passes"]["changes"].as_array().unwrap();
    assert!(changes
        .iter()
        .any(|c| c.as_str().unwrap().starts_with("legalize-aten: conv+clamp")));

    // The classifier max-pools: ATen's operator also writes indices, which get scratch memory.
    let p = Project::with_model("aten-pool", "classifier", ATEN_PROFILE);
    p.build(&[]);
    let report: Value =
        serde_json::from_slice(&fs::read(p.dir.join("target/etpkg/host/report.json")).unwrap())
            .unwrap();
    let ops = report["program"]["operators"].as_array().unwrap();
    assert!(ops.iter().any(|o| o == "aten::max_pool2d_with_indices.out"));

    // The exported GPT's scaled dot-product attention becomes ATen's matmuls and softmax.
    let p = Project::with_model("aten-gpt", "gpt", ATEN_PROFILE);
    p.build(&[]);
    let report: Value =
        serde_json::from_slice(&fs::read(p.dir.join("target/etpkg/host/report.json")).unwrap())
            .unwrap();
    let ops = report["program"]["operators"].as_array().unwrap();
    assert!(ops.iter().any(|o| o == "aten::bmm.out"), "{ops:?}");
    assert!(ops.iter().any(|o| o == "aten::_softmax.out"), "{ops:?}");
    assert!(ops
        .iter()
        .all(|o| o.as_str().unwrap().starts_with("aten::")));

    // A 1-d max pooling has no ATen out variant: a clear error naming the op and the operator.
    let p = Project::with_model("aten-err", "conv1d_net", ATEN_PROFILE);
    let out = p.run(&["build"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("(`max_pool`) needs the operator `etpkg::max_pool.out`"),
        "{err}"
    );
    assert!(err.contains("ops = \"aten\""), "{err}");
}
