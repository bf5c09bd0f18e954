//! The export stage: runs the manifest's `[model.export]` command, which writes the `.pt2`.
//! Invariant: the stage's output is the bytes of the file the command wrote, and the command
//! runs only when its key (argv, environment, the declared inputs' digests) is new.

use super::Produced;
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "cannot run the export command `{command}` (from [model.export] in {}): {source}\n  \
         help: check that the program is installed and on PATH",
        manifest.display()
    )]
    Spawn {
        command: String,
        manifest: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the export command `{command}` (from [model.export] in {}) failed with {status}{}",
        manifest.display(),
        tail(stderr)
    )]
    Failed {
        command: String,
        manifest: PathBuf,
        status: String,
        stderr: String,
    },
    #[error(
        "the export command `{command}` succeeded but did not write {}\n  help: the command \
         must write the file that [model] source names",
        output.display()
    )]
    NoOutput { command: String, output: PathBuf },
    #[error(
        "the export command `{command}` wrote {}, which is not a complete .pt2 archive: \
         {reason}\n  help: write it with torch.export.save(...), and make sure nothing else \
         writes that file during the build",
        output.display()
    )]
    NotAnArchive {
        command: String,
        output: PathBuf,
        reason: String,
    },
}

fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines.len().saturating_sub(20);
    if lines.is_empty() {
        return String::new();
    }
    format!("; its last output:\n{}", lines[start..].join("\n"))
}

pub struct ExportWork {
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub root: PathBuf,
    pub output: PathBuf,
    pub manifest: PathBuf,
}

pub fn run(w: &ExportWork) -> Result<Produced, ExportError> {
    let shown = w.command.join(" ");
    let mut cmd = Command::new(&w.command[0]);
    // If etpkg itself is killed, the export dies with it instead of writing the model file
    // behind the next build's back.
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs between fork and exec and only makes one async-signal-safe
        // system call.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    let out = cmd
        .args(&w.command[1..])
        .current_dir(&w.root)
        .envs(w.env.iter().map(|(k, v)| (k, v)))
        .env("ETPKG_EXPORT_OUTPUT", &w.output)
        .output()
        .map_err(|source| ExportError::Spawn {
            command: shown.clone(),
            manifest: w.manifest.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(ExportError::Failed {
            command: shown,
            manifest: w.manifest.clone(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let bytes = std::fs::read(&w.output)
        .ok()
        .ok_or_else(|| ExportError::NoOutput {
            command: shown.clone(),
            output: w.output.clone(),
        })?;
    if let Err(reason) = crate::pt2::check_container(&bytes) {
        return Err(ExportError::NotAnArchive {
            command: shown,
            output: w.output.clone(),
            reason,
        });
    }
    Ok(vec![("pt2".to_string(), bytes)])
}
