//! Resident memory of a process, from `/proc/<pid>/status` (`VmRSS`), Linux only.
//!
//! The generator runs beside the server, so `--server-pid` lets it read the server's
//! RSS directly. Elsewhere (no `/proc`) readings are simply `None`.

/// Extracts `VmRSS` (KiB) from the text of a `/proc/<pid>/status` file.
pub fn parse_vm_rss_kib(status_text: &str) -> Option<u64> {
    status_text
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// The RSS of process `pid` in KiB, if it can be read.
pub fn rss_kib(pid: u32) -> Option<u64> {
    parse_vm_rss_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The generator's own RSS in KiB.
pub fn own_rss_kib() -> Option<u64> {
    parse_vm_rss_kib(&std::fs::read_to_string("/proc/self/status").ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `VmRSS` line is found among the others; its absence is `None`.
    #[test]
    fn parses_vm_rss() {
        let status_text = "Name:\tparley\nVmPeak:\t  900000 kB\nVmRSS:\t   51234 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss_kib(status_text), Some(51234));
        assert_eq!(parse_vm_rss_kib("Name:\tx\n"), None);
    }

    /// Our own process always has a readable RSS on Linux.
    #[test]
    fn own_rss_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(own_rss_kib().unwrap() > 0);
        }
    }
}
