//! Subcommands of `maos`, one module each, and what they share.

use std::path::Path;
use std::process::ExitCode;

use maos_policy::{DecisionPoint, LoadErrors};

/// `println!` that does not panic on a closed pipe (see [`out`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::commands::out(&format!($($arg)*))
    };
}

pub mod audit;
pub mod authz;
pub mod identity;
pub mod policy;
pub mod siem;
// Commands that talk to a running server.
pub mod client;
pub mod keys;
pub mod secrets;

/// Exit status for bad input: a usage error, an unreadable file, an invalid bundle or request.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when the command ran but something it checked failed (a bundle test).
pub const EXIT_FAILED: u8 = 1;

/// Why a command stopped.
#[derive(Debug)]
pub enum Failure {
    /// Bad input; every line is printed to stderr, then exit 2.
    BadInput(Vec<String>),
}

impl Failure {
    pub fn bad_input(line: impl Into<String>) -> Failure {
        Failure::BadInput(vec![line.into()])
    }

    pub fn report(self) -> ExitCode {
        match self {
            Failure::BadInput(lines) => {
                for line in lines {
                    eprintln!("{line}");
                }
                ExitCode::from(EXIT_BAD_INPUT)
            }
        }
    }
}

/// Prints one line on stdout. A closed pipe (`maos ... | head`) ends the program quietly
/// instead of panicking like `println!`.
pub fn out(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}").is_err() {
        std::process::exit(0);
    }
}

/// Reads a file as text, naming it in the error.
pub fn read_file(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::bad_input(format!("{}: cannot read: {e}", path.display())))
}

/// The compiler-style lines (`file:line: path: message`) of load errors.
pub fn error_lines(errors: &LoadErrors) -> Vec<String> {
    errors
        .errors
        .iter()
        .map(|e| e.to_compiler_style())
        .collect()
}

/// Reads, validates and compiles a bundle file.
pub fn load_bundle(path: &Path) -> Result<DecisionPoint, Failure> {
    let source = read_file(path)?;
    DecisionPoint::load(&source, &path.display().to_string())
        .map_err(|errors| Failure::BadInput(error_lines(&errors)))
}
