//! `switchyard.toml`: one file for `up` and for every separate component.
//!
//! Every key is a flag's long name, and every flag reads a `SWITCHYARD_*` variable; the file is
//! applied by setting the variables it names that are not already set, before the command line is
//! parsed. Precedence is therefore flag > environment > file > default, with no second list of
//! options to keep in step with the flags. Top-level keys apply to every subcommand; a table named
//! after a subcommand (`[controller]`) applies to that one only and wins over the top level.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The `--config` value, read before clap runs (clap needs the variables already set).
pub fn path_from_args(args: impl IntoIterator<Item = OsString>) -> PathBuf {
    let mut args = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--config" {
            if let Some(path) = args.next() {
                return path.into();
            }
        } else if let Some(path) = arg.strip_prefix("--config=") {
            return path.into();
        }
    }
    std::env::var_os("SWITCHYARD_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| "switchyard.toml".into())
}

/// The first argument that is not a flag: the subcommand, for its `[table]`.
pub fn subcommand_from_args(args: impl IntoIterator<Item = OsString>) -> Option<String> {
    let mut args = args
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--config" {
            args.next();
        } else if !arg.starts_with('-') {
            return Some(arg);
        }
    }
    None
}

/// Sets `SWITCHYARD_<KEY>` for each key of the file not already in the environment. A missing
/// file is fine (the default path is optional); an unreadable or invalid one is an error.
pub fn load_into_env(path: &Path, subcommand: Option<&str>) -> anyhow::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    for (name, value) in variables(&text, subcommand)
        .with_context(|| format!("invalid configuration in {}", path.display()))?
    {
        if std::env::var_os(&name).is_none() {
            // SAFETY: called from `main` before the runtime or any other thread starts.
            unsafe { std::env::set_var(name, value) };
        }
    }
    Ok(())
}

/// The variables a configuration text sets, subcommand table first so it wins.
fn variables(text: &str, subcommand: Option<&str>) -> anyhow::Result<Vec<(String, String)>> {
    let table: toml::Table = text.parse()?;
    let mut vars = Vec::new();
    if let Some(section) = subcommand
        .and_then(|name| table.get(name))
        .and_then(|v| v.as_table())
    {
        collect(section, &mut vars)?;
    }
    collect(&table, &mut vars)?;
    Ok(vars)
}

fn collect(table: &toml::Table, vars: &mut Vec<(String, String)>) -> anyhow::Result<()> {
    for (key, value) in table {
        let text = match value {
            toml::Value::Table(_) => continue,
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => anyhow::bail!("key '{key}': list items must be strings, got {other}"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?
                .join(","),
            toml::Value::Datetime(d) => d.to_string(),
        };
        let name = format!("SWITCHYARD_{}", key.to_uppercase().replace('-', "_"));
        if !vars.iter().any(|(existing, _)| *existing == name) {
            vars.push((name, text));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_variables_and_the_subcommand_table_wins() {
        let text = r#"
            discovery = "http://d:1"
            concurrency = 4
            algorithms = ["echo", "ocr"]
            [controller]
            concurrency = 16
        "#;
        let vars = variables(text, Some("controller")).unwrap();
        assert!(vars.contains(&("SWITCHYARD_CONCURRENCY".into(), "16".into())));
        assert!(vars.contains(&("SWITCHYARD_DISCOVERY".into(), "http://d:1".into())));
        assert!(vars.contains(&("SWITCHYARD_ALGORITHMS".into(), "echo,ocr".into())));
        let vars = variables(text, Some("runner")).unwrap();
        assert!(vars.contains(&("SWITCHYARD_CONCURRENCY".into(), "4".into())));
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../../switchyard.example.toml");
        let vars = variables(text, Some("up")).unwrap();
        assert!(vars.contains(&("SWITCHYARD_DATA".into(), "./switchyard-data".into())));
        assert!(vars.contains(&(
            "SWITCHYARD_DISCOVERY_LISTEN".into(),
            "127.0.0.1:8500".into()
        )));
    }

    #[test]
    fn invalid_files_are_errors() {
        assert!(variables("concurrency = ", None).is_err());
        assert!(variables("algorithms = [1, 2]", None).is_err());
    }

    #[test]
    fn finds_config_and_subcommand_in_args() {
        let args = [
            "switchyard",
            "--config",
            "x.toml",
            "runner",
            "--listen",
            "a",
        ]
        .map(OsString::from);
        assert_eq!(path_from_args(args.clone()), PathBuf::from("x.toml"));
        assert_eq!(subcommand_from_args(args).as_deref(), Some("runner"));
    }
}
