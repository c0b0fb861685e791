//! The standard `process_*` metrics (as Prometheus' Go and Python clients export them), read from
//! `/proc/self` at each scrape: dashboards built for Promtail chart CPU and memory with them.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Collects `process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_virtual_memory_bytes`, `process_virtual_memory_max_bytes`, `process_open_fds`,
/// `process_max_fds` and `process_start_time_seconds`.
#[derive(Debug)]
pub struct ProcessCollector;

/// What `/proc/self` says of this process.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub virtual_bytes: f64,
    pub start_time_seconds: f64,
    pub open_fds: f64,
    pub max_fds: f64,
    pub virtual_max_bytes: f64,
}

impl ProcessStats {
    /// Reads the stats; `None` where `/proc` is not there (not Linux).
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot_time = boot_time_seconds()?;
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let page = rustix::param::page_size() as f64;
        let mut s = parse_stat(&stat, ticks, page, boot_time)?;
        s.open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
        use rustix::process::{getrlimit, Resource};
        // No limit is reported as the largest number, as Prometheus' client does.
        s.max_fds = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX) as f64;
        s.virtual_max_bytes = getrlimit(Resource::As).current.unwrap_or(u64::MAX) as f64;
        Some(s)
    }
}

/// Fields of `/proc/self/stat` after the command name (which may hold spaces and parentheses).
fn parse_stat(stat: &str, ticks: f64, page: f64, boot_time: f64) -> Option<ProcessStats> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field numbers of proc(5) minus 3: utime 14, stime 15, starttime 22, vsize 23, rss 24.
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Some(ProcessStats {
        cpu_seconds: (num(11)? + num(12)?) / ticks,
        start_time_seconds: boot_time + num(19)? / ticks,
        virtual_bytes: num(20)?,
        resident_bytes: num(21)? * page,
        ..Default::default()
    })
}

fn boot_time_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = ProcessStats::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                s.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                s.virtual_bytes,
            ),
            (
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                s.virtual_max_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                s.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                s.max_fds,
            ),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_name_with_spaces() {
        let stat = "4242 (lokiship (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 150 0 0 20 0 5 0 1000 104857600 2560 18446744073709551615";
        let s = parse_stat(stat, 100.0, 4096.0, 1_700_000_000.0).unwrap();
        assert_eq!(s.cpu_seconds, 4.0);
        assert_eq!(s.start_time_seconds, 1_700_000_010.0);
        assert_eq!(s.virtual_bytes, 104_857_600.0);
        assert_eq!(s.resident_bytes, 2560.0 * 4096.0);
    }

    #[test]
    fn this_process_has_cpu_memory_and_descriptors() {
        let s = ProcessStats::read().expect("/proc/self");
        assert!(s.resident_bytes > 1_000_000.0);
        assert!(s.open_fds >= 3.0 && s.max_fds >= s.open_fds);
        assert!(s.start_time_seconds > 1_600_000_000.0);
    }
}
