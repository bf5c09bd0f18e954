//! How a build's events reach a person or a CI log. Invariant: human output goes to stderr
//! and JSON to stdout, one object per line, so `--message-format json | jq` sees only JSON.

use crate::build::event::{BuildFinished, EventSink, NodeEvent, Reason};
use crate::build::stage::StageKind;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Cargo-style status lines (`   Importing classifier (host)`), with a progress bar while
/// nodes run when stderr is a terminal.
pub struct Human {
    verbosity: Verbosity,
    /// Whether stderr is a terminal: the progress bar appears only then.
    tty: bool,
    color: bool,
    bar: Option<ProgressBar>,
}

impl Human {
    pub fn new(verbosity: Verbosity) -> Human {
        let tty = std::io::stderr().is_terminal();
        Human {
            verbosity,
            tty,
            color: tty && std::env::var_os("NO_COLOR").is_none(),
            bar: None,
        }
    }

    /// Prints one status line: a right-aligned verb, then the message.
    pub fn status(&self, verb: &str, message: &str) {
        let line = if self.color {
            format!("\x1b[1;32m{verb:>12}\x1b[0m {message}")
        } else {
            format!("{verb:>12} {message}")
        };
        match &self.bar {
            Some(bar) => bar.println(line),
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    fn warn(&self, message: &str) {
        let line = if self.color {
            format!("\x1b[1;33mwarning\x1b[0m: {message}")
        } else {
            format!("warning: {message}")
        };
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

fn subject(e: &NodeEvent) -> String {
    let is_target_stage = e.targets.len() == 1 && e.targets[0] == e.name;
    if e.targets.is_empty() || is_target_stage {
        e.name.clone()
    } else {
        format!("{} ({})", e.name, e.targets.join(", "))
    }
}

impl EventSink for Human {
    fn plan(&mut self, _total: usize, to_run: usize) {
        if self.tty && self.verbosity != Verbosity::Quiet && to_run > 0 {
            let bar = ProgressBar::new(to_run as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12.cyan.bold} [{bar:27}] {pos}/{len}: {msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.set_prefix("Building");
            self.bar = Some(bar);
        }
    }

    fn node(&mut self, e: &NodeEvent) {
        let verbose = self.verbosity == Verbosity::Verbose;
        let quiet = self.verbosity == Verbosity::Quiet;
        let publish = e.stage == StageKind::Publish.name();
        match e.reason {
            Reason::Started => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{} {}", e.stage, subject(e)));
                }
                if !quiet && (!publish || verbose) {
                    let verb = StageKind::from_name(e.stage).map_or("Running", StageKind::verb);
                    self.status(verb, &subject(e));
                }
            }
            Reason::Fresh if verbose => {
                self.status("Fresh", &format!("{} {}", e.stage, subject(e)))
            }
            Reason::Finished | Reason::Failed => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
            Reason::CacheCorrupt => self.warn(&format!(
                "{} of `{}`: {}",
                e.stage,
                e.name,
                e.error.as_deref().unwrap_or("corrupt cache entry")
            )),
            _ => {}
        }
    }

    fn finished(&mut self, s: &BuildFinished) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if s.success && self.verbosity != Verbosity::Quiet {
            let targets: Vec<String> = s
                .targets
                .iter()
                .zip(&s.profiles)
                .map(|(t, p)| format!("{t} [{p}]"))
                .collect();
            self.status(
                "Finished",
                &format!("{} in {:.2}s", targets.join(", "), s.duration_ms / 1e3),
            );
        }
    }

    fn note(&mut self, status: &str, message: &str) {
        if self.verbosity != Verbosity::Quiet {
            self.status(status, message);
        }
    }
}

/// `--message-format json`: every node event and the closing summary as one JSON object per
/// line on stdout. Notes for humans still go to stderr.
pub struct Json;

impl EventSink for Json {
    fn node(&mut self, e: &NodeEvent) {
        print_json(e);
    }

    fn finished(&mut self, s: &BuildFinished) {
        print_json(s);
    }

    fn note(&mut self, status: &str, message: &str) {
        eprintln!("{status:>12} {message}");
    }
}

fn print_json<T: serde::Serialize>(v: &T) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, v);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}
