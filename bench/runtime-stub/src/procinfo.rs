//! CPU accounting of the child: a live sample (process CPU clock, /proc/<pid>/stat) and the
//! final figure from wait4's rusage.

use std::io;

/// The child's resource usage as wait4 reports it once it is reaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub user_ms: f64,
    pub sys_ms: f64,
    pub max_rss_kb: i64,
}

impl Usage {
    pub fn total_ms(&self) -> f64 {
        self.user_ms + self.sys_ms
    }
}

/// A CPU sample of a running process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSample {
    /// utime + stime from /proc/<pid>/stat, in ms (clock-tick resolution, usually 10 ms).
    pub stat_ms: Option<f64>,
    /// The process CPU clock (CLOCK_PROCESS_CPUTIME_ID of the child), in ms, ns resolution.
    pub clock_ms: Option<f64>,
}

impl CpuSample {
    /// The most precise figure available.
    pub fn best_ms(&self) -> Option<f64> {
        self.clock_ms.or(self.stat_ms)
    }

    pub fn source(&self) -> &'static str {
        if self.clock_ms.is_some() {
            "process CPU clock"
        } else if self.stat_ms.is_some() {
            "/proc/<pid>/stat"
        } else {
            "unavailable"
        }
    }
}

/// Reads both live CPU figures of `pid`.
pub fn sample(pid: i32) -> CpuSample {
    let stat_ms = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat_cpu_ticks(&s))
        .map(|(u, s)| (u + s) as f64 * 1000.0 / clk_tck() as f64);
    CpuSample {
        stat_ms,
        clock_ms: process_cpu_ns(pid).map(|ns| ns as f64 / 1e6),
    }
}

/// utime and stime (clock ticks) from the text of /proc/<pid>/stat. The command name (field 2)
/// is in parentheses and may hold spaces or parentheses, so fields are counted after the last ')'.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ')': field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let utime = fields.get(11)?.parse().ok()?;
    let stime = fields.get(12)?.parse().ok()?;
    Some((utime, stime))
}

pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// CPU time consumed so far by every thread of `pid`, dead or alive, in ns.
pub fn process_cpu_ns(pid: i32) -> Option<u64> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: clock is a valid out-pointer.
    if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
        return None;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Blocks until `pid` (a child of this process) ends; returns its wait status and usage.
pub fn wait4(pid: i32) -> io::Result<(i32, Usage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: status and ru are valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let ms = |tv: libc::timeval| tv.tv_sec as f64 * 1000.0 + tv.tv_usec as f64 / 1000.0;
    Ok((
        status,
        Usage {
            user_ms: ms(ru.ru_utime),
            sys_ms: ms(ru.ru_stime),
            max_rss_kb: ru.ru_maxrss,
        },
    ))
}

/// Sends SIGTERM to `pid`.
pub fn terminate(pid: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// Sends SIGKILL to `pid`.
pub fn kill(pid: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// "exit code N" or "killed by signal N" for a wait status.
pub fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_name() {
        let line = "14854 (my (odd) cmd) R 14850 14850 7269 0 -1 4194304 99 0 0 0 37 12 0 0 20 0 1 0 398471 3133440 410\n";
        assert_eq!(parse_stat_cpu_ticks(line), Some((37, 12)));
        assert_eq!(parse_stat_cpu_ticks("1 (x) R 1 2"), None);
        assert_eq!(parse_stat_cpu_ticks("no parens"), None);
    }

    #[test]
    fn samples_own_process() {
        let pid = std::process::id() as i32;
        // Burn a little CPU so both figures are non-zero at least for the clock.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let s = sample(pid);
        assert!(s.stat_ms.is_some());
        assert!(s.clock_ms.unwrap() > 0.0);
        assert_eq!(s.source(), "process CPU clock");
    }

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by wait4
    fn describes_statuses() {
        let child = std::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        let (status, usage) = wait4(child.id() as i32).unwrap();
        assert_eq!(describe_status(status), "exit code 3");
        assert!(usage.total_ms() >= 0.0);
    }
}
