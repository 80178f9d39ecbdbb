#![allow(dead_code)]

use std::path::PathBuf;

/// A folder under the shared data directory (`/work/shared` next to the repository), or a
/// clear failure when it is missing.
pub fn shared(rel: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel);
    assert!(
        path.exists(),
        "shared test data `{}` is missing: the repository must sit next to `shared/`",
        path.display()
    );
    path
}
