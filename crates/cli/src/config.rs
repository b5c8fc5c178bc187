//! `switchyard.toml`: one file for `up` and for every separate component.
//!
//! Every key is a flag's long name, and every flag reads a `SWITCHYARD_*` variable; the file is
//! applied by setting the variables it names that are not already set, before the command line is
//! parsed. Precedence is therefore flag > environment > file > default, with no second list of
//! options to keep in step with the flags. Top-level keys apply to every subcommand; a table named
//! after a subcommand (`[controller]`) applies to that one only and wins over the top level.
//!
//! A key no flag reads would do nothing and say nothing (`concurency = 4`), so it is an error
//! naming the key and the closest valid one: a top-level key must be a flag of some subcommand
//! (it applies to those that have it), a table must be named after a subcommand, and a table's
//! key must be a flag of that subcommand. `SWITCHYARD_*` variables are shared with other tools
//! (the Python package, containers' environments), so only one that no flag reads but that is
//! one or two edits from a variable of the running subcommand is refused, as a typo.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Variables read by something other than a flag: this binary itself, its test suites and the
/// `switchyard` Python package, which shares the runner's variables and adds these.
const OTHER_VARIABLES: [&str; 8] = [
    "SWITCHYARD_CONFIG",
    "SWITCHYARD_LOG",
    "SWITCHYARD_LOG_LEVEL",
    "SWITCHYARD_BIN",
    "SWITCHYARD_SOAK",
    "SWITCHYARD_SERIES_ADAPTER",
    "SWITCHYARD_STANDALONE",
    "SWITCHYARD_EXECUTOR",
];

/// Variables renamed with their flag (`up --broker` became `--amqp`, as everywhere else): the old
/// name still works, and says once what the new one is.
const RENAMED_VARIABLES: [(&str, &str); 1] = [("SWITCHYARD_BROKER", "SWITCHYARD_AMQP")];

/// What the command line accepts: each subcommand's flags (long names) and variables.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    by_subcommand: BTreeMap<String, Subcommand>,
    /// A flag's other names (`broker` for `amqp`), by alias: a file may use either.
    aliases: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Subcommand {
    long_names: BTreeSet<String>,
    variables: BTreeSet<String>,
}

impl Flags {
    pub(crate) fn of(command: &clap::Command) -> Flags {
        let global: Vec<&clap::Arg> = command.get_arguments().collect();
        let mut aliases = BTreeMap::new();
        let by_subcommand = command
            .get_subcommands()
            .map(|subcommand| {
                let args = subcommand.get_arguments().chain(global.iter().copied());
                let mut flags = Subcommand::default();
                for arg in args {
                    if let Some(long) = arg.get_long() {
                        flags.long_names.insert(long.to_owned());
                        for alias in arg.get_all_aliases().into_iter().flatten() {
                            flags.long_names.insert(alias.to_owned());
                            aliases.insert(alias.to_owned(), long.to_owned());
                        }
                    }
                    if let Some(variable) = arg.get_env() {
                        flags
                            .variables
                            .insert(variable.to_string_lossy().into_owned());
                    }
                }
                (subcommand.get_name().to_owned(), flags)
            })
            .collect();
        Flags {
            by_subcommand,
            aliases,
        }
    }

    fn subcommand(&self, name: &str) -> Option<&Subcommand> {
        self.by_subcommand.get(name)
    }

    fn any_has_flag(&self, long: &str) -> bool {
        self.by_subcommand
            .values()
            .any(|flags| flags.long_names.contains(long))
    }

    fn every_flag(&self) -> impl Iterator<Item = &str> {
        self.by_subcommand
            .values()
            .flat_map(|flags| flags.long_names.iter().map(String::as_str))
    }

    fn is_read_anywhere(&self, variable: &str) -> bool {
        OTHER_VARIABLES.contains(&variable)
            || RENAMED_VARIABLES.iter().any(|(old, _)| *old == variable)
            || self
                .by_subcommand
                .values()
                .any(|flags| flags.variables.contains(variable))
    }

    /// Refuses a `SWITCHYARD_*` variable of `environment` that looks like a typo of one the
    /// running subcommand reads.
    pub(crate) fn check_environment(
        &self,
        subcommand: Option<&str>,
        environment: impl IntoIterator<Item = String>,
    ) -> anyhow::Result<()> {
        let Some(flags) = subcommand.and_then(|name| self.subcommand(name)) else {
            return Ok(());
        };
        for variable in environment {
            if !variable.starts_with("SWITCHYARD_") || self.is_read_anywhere(&variable) {
                continue;
            }
            if let Some(meant) = closest(&variable, flags.variables.iter().map(String::as_str))
                && strsim::levenshtein(&variable, meant) <= 2
            {
                bail!(
                    "{variable} is set, but no flag of `switchyard {}` reads it: did you mean {meant}?",
                    subcommand.unwrap_or_default()
                );
            }
        }
        Ok(())
    }
}

/// The candidate nearest to `wanted` by edit distance.
fn closest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates.min_by_key(|candidate| strsim::levenshtein(wanted, candidate))
}

/// A suggestion only when it is near enough to be the name meant, not merely the least far.
fn did_you_mean<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    closest(wanted, candidates)
        .filter(|meant| strsim::levenshtein(wanted, meant) <= 2.max(wanted.len() / 3))
        .map_or_else(String::new, |meant| format!("; did you mean '{meant}'?"))
}

/// Refuses a key no flag reads, naming the closest valid one.
fn check_keys(table: &toml::Table, flags: &Flags) -> anyhow::Result<()> {
    for (key, value) in table {
        if let toml::Value::Table(section) = value {
            let Some(subcommand) = flags.subcommand(key) else {
                bail!(
                    "[{key}] is not a subcommand{}",
                    did_you_mean(key, flags.by_subcommand.keys().map(String::as_str))
                );
            };
            for inner in section.keys() {
                if !subcommand.long_names.contains(inner) {
                    bail!(
                        "key '{inner}' of [{key}] is not a flag of `switchyard {key}`{}",
                        did_you_mean(inner, subcommand.long_names.iter().map(String::as_str))
                    );
                }
            }
        } else if !flags.any_has_flag(key) {
            bail!(
                "key '{key}' is not a flag of any subcommand{}",
                did_you_mean(key, flags.every_flag())
            );
        }
    }
    Ok(())
}

/// The `--config` value, read before clap runs (clap needs the variables already set).
pub(crate) fn path_from_args(args: impl IntoIterator<Item = OsString>) -> PathBuf {
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
pub(crate) fn subcommand_from_args(args: impl IntoIterator<Item = OsString>) -> Option<String> {
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
/// file is fine (the default path is optional); an unreadable or invalid one, or one with a key
/// no flag reads, is an error.
pub(crate) fn load_into_env(
    path: &Path,
    subcommand: Option<&str>,
    flags: &Flags,
) -> anyhow::Result<()> {
    // Before the file, which may be absent: an old name works without one.
    for (old, new, value) in renamed(|name| std::env::var_os(name)) {
        eprintln!("switchyard: {old} is now {new}; reading it as {new}");
        // SAFETY: called from `main` before the runtime or any other thread starts.
        unsafe { std::env::set_var(new, value) };
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    for (name, value) in variables(&text, subcommand, flags)
        .with_context(|| format!("invalid configuration in {}", path.display()))?
    {
        if std::env::var_os(&name).is_none() {
            // SAFETY: called from `main` before the runtime or any other thread starts.
            unsafe { std::env::set_var(name, value) };
        }
    }
    Ok(())
}

/// Old variable names that are set, as (old, new, value): each to be read as its new name, and
/// said once. The new name wins when both are set.
fn renamed(get: impl Fn(&str) -> Option<OsString>) -> Vec<(&'static str, &'static str, OsString)> {
    RENAMED_VARIABLES
        .iter()
        .filter_map(|&(old, new)| {
            let value = get(old)?;
            get(new).is_none().then_some((old, new, value))
        })
        .collect()
}

/// The variables a configuration text sets, subcommand table first so it wins.
fn variables(
    text: &str,
    subcommand: Option<&str>,
    flags: &Flags,
) -> anyhow::Result<Vec<(String, String)>> {
    let table: toml::Table = text.parse()?;
    check_keys(&table, flags)?;
    let mut vars = Vec::new();
    if let Some(section) = subcommand
        .and_then(|name| table.get(name))
        .and_then(|v| v.as_table())
    {
        collect(section, flags, &mut vars)?;
    }
    collect(&table, flags, &mut vars)?;
    Ok(vars)
}

fn collect(
    table: &toml::Table,
    flags: &Flags,
    vars: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
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
        let key = flags.aliases.get(key).unwrap_or(key);
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
    use clap::CommandFactory;

    fn flags() -> Flags {
        Flags::of(&crate::Cli::command())
    }

    fn variables(text: &str, subcommand: Option<&str>) -> anyhow::Result<Vec<(String, String)>> {
        super::variables(text, subcommand, &flags())
    }

    fn refusal(text: &str) -> String {
        format!("{:#}", variables(text, Some("controller")).unwrap_err())
    }

    #[test]
    fn a_key_no_flag_reads_is_refused_naming_the_closest() {
        assert_eq!(
            refusal("concurency = 4"),
            "key 'concurency' is not a flag of any subcommand; did you mean 'concurrency'?"
        );
        assert_eq!(
            refusal("[controller]\ndemo = true"),
            "key 'demo' of [controller] is not a flag of `switchyard controller`"
        );
        assert_eq!(
            refusal("[contoller]\nconcurrency = 4"),
            "[contoller] is not a subcommand; did you mean 'controller'?"
        );
        // A top-level key applies to the subcommands that have it: `discovery` has no `--amqp`.
        assert!(variables("amqp = \"amqp://x\"\ndemo = true", Some("discovery")).is_ok());
        // A flag's old name still works, as its new one.
        let vars = variables("[up]\nbroker = \"amqp://x\"", Some("up")).unwrap();
        assert_eq!(
            vars,
            [("SWITCHYARD_AMQP".to_owned(), "amqp://x".to_owned())]
        );
    }

    #[test]
    fn an_old_variable_name_is_read_as_its_new_one_unless_that_is_set() {
        let environment = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| OsString::from(value))
            }
        };
        assert_eq!(
            renamed(environment(&[("SWITCHYARD_BROKER", "amqp://old")])),
            [(
                "SWITCHYARD_BROKER",
                "SWITCHYARD_AMQP",
                OsString::from("amqp://old")
            )]
        );
        const BOTH: [(&str, &str); 2] = [
            ("SWITCHYARD_BROKER", "amqp://old"),
            ("SWITCHYARD_AMQP", "amqp://new"),
        ];
        assert!(renamed(environment(&BOTH)).is_empty());
        assert!(renamed(environment(&[])).is_empty());
    }

    #[test]
    fn a_variable_one_typo_from_a_flags_is_refused_and_others_are_left_alone() {
        let flags = flags();
        let check = |variable: &str| {
            flags
                .check_environment(Some("controller"), [variable.to_owned()])
                .map_err(|error| error.to_string())
        };
        assert_eq!(
            check("SWITCHYARD_CONCURENCY"),
            Err(
                "SWITCHYARD_CONCURENCY is set, but no flag of `switchyard controller` reads it: \
                 did you mean SWITCHYARD_CONCURRENCY?"
                    .to_owned()
            )
        );
        for fine in [
            "SWITCHYARD_CONCURRENCY",
            "SWITCHYARD_DATA",
            "SWITCHYARD_SERIES_ADAPTER",
            "SWITCHYARD_SOMETHING_ELSE_ENTIRELY",
            "PATH",
        ] {
            assert_eq!(check(fine), Ok(()), "{fine}");
        }
    }

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
