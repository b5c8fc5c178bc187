//! Where ONNX Runtime's shared library is, so `pip install onnxruntime` is all a user does to
//! classify at its speed: `ORT_DYLIB_PATH` when set, else the `onnxruntime` wheel of the active
//! virtual environment or of `python3`, else the system's library directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the library was found, for the log line that says which engine runs and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    pub path: PathBuf,
    pub how: &'static str,
}

/// System directories distributions and `make install` put shared libraries in.
const SYSTEM_DIRS: [&str; 5] = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/local/lib",
    "/usr/lib",
    "/opt/homebrew/lib",
];

/// The first place that has the library. `ORT_DYLIB_PATH` is returned even when the file is
/// missing, so a wrong setting is reported, not silently replaced.
pub(super) fn find() -> Option<Found> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|path| !path.is_empty()) {
        return Some(Found {
            path: PathBuf::from(path),
            how: "ORT_DYLIB_PATH",
        });
    }
    let virtual_env = std::env::var_os("VIRTUAL_ENV").map(PathBuf::from);
    if let Some(path) = virtual_env.as_deref().and_then(in_environment) {
        return Some(Found {
            path,
            how: "the active virtual environment ($VIRTUAL_ENV)",
        });
    }
    if let Some(path) = from_python() {
        return Some(Found {
            path,
            how: "the onnxruntime wheel python3 imports",
        });
    }
    SYSTEM_DIRS
        .iter()
        .find_map(|dir| newest_library(Path::new(dir)))
        .map(|path| Found {
            path,
            how: "the system's library directories",
        })
}

/// `<env>/lib/python3.*/site-packages/onnxruntime/capi/libonnxruntime.so*`.
fn in_environment(env: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(env.join("lib")).ok()?;
    lib.flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("python3"))
        .find_map(|python| newest_library(&python.path().join("site-packages/onnxruntime/capi")))
}

/// Asks `python3` where its `onnxruntime` package is: covers pyenv, `--user` and distribution
/// installs without guessing their layouts. Nothing when python3 or the package is missing.
fn from_python() -> Option<PathBuf> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import os, onnxruntime; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let package = String::from_utf8(output.stdout).ok()?;
    newest_library(&Path::new(package.trim()).join("capi"))
}

/// The most specific `libonnxruntime` in `dir` (`.so.1.32.0` before `.so.1` before `.so`).
fn newest_library(dir: &Path) -> Option<PathBuf> {
    let mut libraries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy())
                .is_some_and(|name| {
                    name.starts_with("libonnxruntime.so") || name == "libonnxruntime.dylib"
                })
                && path.is_file()
        })
        .collect();
    libraries.sort_by_key(|path| std::cmp::Reverse(path.as_os_str().len()));
    libraries.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_library_of_a_wheel_is_chosen() {
        let env = tempfile::tempdir().unwrap();
        let capi = env
            .path()
            .join("lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        assert_eq!(in_environment(env.path()), None);
        for name in [
            "libonnxruntime.so",
            "libonnxruntime.so.1.32.0",
            "libonnxruntime_providers_shared.so",
        ] {
            std::fs::write(capi.join(name), b"").unwrap();
        }
        assert_eq!(
            in_environment(env.path()),
            Some(capi.join("libonnxruntime.so.1.32.0"))
        );
    }

    #[test]
    fn a_directory_without_the_library_has_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("libother.so"), b"").unwrap();
        assert_eq!(newest_library(dir.path()), None);
        assert_eq!(newest_library(&dir.path().join("missing")), None);
    }
}
