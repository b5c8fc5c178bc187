//! CPU time of processes, from Linux's `/proc`: which process a measurement's work went to.
//! Images/s say how fast the machine as a whole got through the work; CPU time per image says
//! who spent it (the runner, the controller, the broker, the producer), which is what a process
//! placed on a machine of its own would cost.

use std::collections::HashMap;

use anyhow::Context;

/// `/proc/<pid>/stat` counts CPU time in ticks of USER_HZ, which Linux fixes at 100 for user
/// space on x86 and Arm.
const TICKS_PER_SECOND: f64 = 100.0;

/// RabbitMQ's Erlang VM, as `/proc/<pid>/comm` names it.
const RABBITMQ_COMMAND: &str = "beam.smp";

/// A process whose CPU time is counted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Process {
    pub name: &'static str,
    pub pid: u32,
    /// Count its descendants too, as they are at the time of a reading: the peer's uvicorn
    /// workers are children of its first process. Not for this bench's own process, whose
    /// children are the runner and the controller, counted on their own.
    pub with_descendants: bool,
}

/// The processes a measurement watches.
#[derive(Debug, Clone)]
pub(super) struct Watched {
    processes: Vec<Process>,
}

impl Watched {
    pub(super) fn new(processes: Vec<Process>) -> Self {
        Watched { processes }
    }

    /// The names, in the order of [`Watched::cpu_seconds`]'s figures.
    pub(super) fn names(&self) -> Vec<&'static str> {
        self.processes.iter().map(|process| process.name).collect()
    }

    /// CPU seconds (user and system) each process has used so far.
    pub(super) fn cpu_seconds(&self) -> anyhow::Result<Vec<f64>> {
        let table = process_table()?;
        self.processes
            .iter()
            .map(
                |&Process {
                     name,
                     pid,
                     with_descendants,
                 }| {
                    let root = table
                        .get(&pid)
                        .with_context(|| format!("the {name} (pid {pid}) has exited"))?;
                    let mut ticks = root.ticks;
                    let mut pending = if with_descendants {
                        vec![pid]
                    } else {
                        Vec::new()
                    };
                    while let Some(parent) = pending.pop() {
                        for (&child, stat) in &table {
                            if stat.parent == parent {
                                ticks += stat.ticks;
                                pending.push(child);
                            }
                        }
                    }
                    Ok(ticks as f64 / TICKS_PER_SECOND)
                },
            )
            .collect()
    }

    /// Runs `work` and gives, with its output, the CPU seconds each process used meanwhile.
    pub(super) async fn during<T>(
        &self,
        work: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<(T, Vec<f64>)> {
        let before = self.cpu_seconds()?;
        let output = work.await?;
        let after = self.cpu_seconds()?;
        let used = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        Ok((output, used))
    }
}

/// A local RabbitMQ's process, when one runs on this machine.
pub(super) fn local_rabbitmq() -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let command = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        (command.trim_end() == RABBITMQ_COMMAND).then_some(pid)
    })
}

/// What one `/proc/<pid>/stat` says that matters here.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    parent: u32,
    /// User and system time of every thread of the process, and of the children it has reaped:
    /// a worker process that exits and is replaced still counts.
    ticks: u64,
}

/// Every process's [`Stat`], by pid. Processes that exit while it is read are left out.
fn process_table() -> anyhow::Result<HashMap<u32, Stat>> {
    let mut table = HashMap::new();
    for entry in std::fs::read_dir("/proc")
        .context("reading /proc")?
        .flatten()
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        if let Some(stat) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|text| parse_stat(&text))
        {
            table.insert(pid, stat);
        }
    }
    Ok(table)
}

/// `pid (command) state ppid ...`: the command may hold spaces and parentheses, so fields are
/// counted from its last `)`. After it, the parent is the 2nd field; user and system time, then
/// those of the children it has reaped, the 12th to 15th (`proc(5)`'s fields 4 and 14 to 17).
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, fields) = text.rsplit_once(')')?;
    let fields: Vec<&str> = fields.split_whitespace().collect();
    let number = |index: usize| fields.get(index)?.parse::<u64>().ok();
    Some(Stat {
        parent: u32::try_from(number(1)?).ok()?,
        ticks: (11..=14).map(number).sum::<Option<u64>>()?,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt as _;

    use super::*;

    #[test]
    fn reads_parent_and_times_past_a_command_with_spaces_and_parentheses() {
        let text = "4242 (python (uvicorn) w) S 4200 4242 4242 0 -1 4194560 900 0 0 0 \
                    1234 56 7 8 20 0 3 0 777 0 0\n";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                parent: 4200,
                ticks: 1234 + 56 + 7 + 8
            })
        );
        assert_eq!(parse_stat("4242 (cut short) S 1"), None);
    }

    #[test]
    fn counts_the_time_of_a_process_s_descendants() {
        // A shell that only waits, and its child that spins: the spinning must show under the
        // shell, however busy the machine is (waited for, up to 30 s, not given a fixed slice).
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sh -c 'while :; do :; done' & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let process = |with_descendants| Process {
            name: "shell",
            pid: shell.id(),
            with_descendants,
        };
        let watched = Watched::new(vec![process(true), process(false)]);
        let before = watched.cpu_seconds().unwrap();
        let started = std::time::Instant::now();
        let mut counted = [0.0, 0.0];
        while counted[0] < 0.2 && started.elapsed() < std::time::Duration::from_secs(30) {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let now = watched.cpu_seconds().unwrap();
            counted = [now[0] - before[0], now[1] - before[1]];
        }
        let group = format!("-{}", shell.id());
        std::process::Command::new("kill")
            .args(["-9", "--", &group])
            .status()
            .unwrap();
        shell.wait().unwrap();
        assert!(
            counted[0] >= 0.2,
            "the spinning child's time was not counted: {} s in {:?}",
            counted[0],
            started.elapsed()
        );
        assert!(
            counted[1] < 0.1,
            "the shell alone only waits, yet used {} s",
            counted[1]
        );
        assert_eq!(watched.names(), ["shell", "shell"]);
    }

    #[test]
    fn an_exited_process_is_named() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let error = Watched::new(vec![Process {
            name: "runner",
            pid,
            with_descendants: false,
        }])
        .cpu_seconds()
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("the runner (pid {pid}) has exited")
        );
    }
}
