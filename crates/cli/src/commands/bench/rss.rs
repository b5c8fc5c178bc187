//! Peak memory of a process, from Linux's `/proc`.

use anyhow::Context;

/// The peak resident set size (`VmHWM`) of process `pid`, in MiB. Read it while the process
/// lives: an exited process has no memory figures left.
pub(super) fn peak_rss_mb(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_hwm_kb(&status)
        .map(|kb| kb as f64 / 1024.0)
        .with_context(|| format!("no VmHWM in {path}"))
}

/// `VmHWM:     12345 kB` as 12345.
fn parse_vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_peak_from_a_status_file() {
        let status = "Name:\tswitchyard\nVmPeak:\t  900 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_vm_hwm_kb(status), Some(20480));
        assert_eq!(parse_vm_hwm_kb("Name:\tzombie\n"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(peak_rss_mb(std::process::id()).unwrap() > 0.0);
    }
}
