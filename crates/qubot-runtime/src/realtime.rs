//! The realtime profile's system calls: SCHED_FIFO for a thread, CPU affinity for a thread,
//! and memory locking for the process. Each one either works or says what refused it; what to
//! do about a refusal (warn and run, or exit) is the caller's call.
//!
//! The policy is set with SCHED_RESET_ON_FORK: threads the realtime thread starts later (a
//! planner's worker, a library's pool) begin with normal scheduling, so only the threads that
//! asked for it can starve the board. Affinity is inherited as usual.

use std::io;

/// What the profile asks of one thread or process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// SCHED_FIFO priority (1–99); `None` keeps normal scheduling.
    pub priority: Option<u8>,
    /// CPUs the timing threads may run on; empty: any.
    pub cpus: Vec<usize>,
    /// `mlockall(MCL_CURRENT | MCL_FUTURE)`: no page fault on the loop's path.
    pub lock_memory: bool,
}

/// One part of the profile the system refused.
#[derive(Debug)]
pub struct Refusal {
    /// `priority`, `affinity` or `mlock`: the label of the refusal counter.
    pub part: &'static str,
    /// The node-config key the part comes from.
    pub key: &'static str,
    pub error: io::Error,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hint = match self.part {
            "priority" => "needs CAP_SYS_NICE or an RLIMIT_RTPRIO at least that high (systemd: LimitRTPRIO=)",
            "mlock" => "needs CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK (systemd: LimitMEMLOCK=infinity)",
            _ => "the CPUs must exist and be allowed to this process (systemd: CPUAffinity=)",
        };
        write!(f, "{}: refused by the system: {} ({hint})", self.key, self.error)
    }
}

impl Profile {
    /// Applies the thread parts (priority, affinity) to the calling thread.
    pub fn apply_to_this_thread(&self) -> Vec<Refusal> {
        let mut refused = Vec::new();
        if let Some(p) = self.priority {
            if let Err(error) = set_fifo(p) {
                refused.push(Refusal {
                    part: "priority",
                    key: "realtime.priority",
                    error,
                });
            }
        }
        if !self.cpus.is_empty() {
            if let Err(error) = set_affinity(&self.cpus) {
                refused.push(Refusal {
                    part: "affinity",
                    key: "realtime.cpus",
                    error,
                });
            }
        }
        refused
    }

    /// Applies the process part (memory locking).
    pub fn apply_to_process(&self) -> Vec<Refusal> {
        if !self.lock_memory {
            return Vec::new();
        }
        mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE)
            .err()
            .into_iter()
            .collect()
    }

    /// Whether the system would grant the whole profile, tried on a thread of its own (which
    /// then ends) and undone for the memory lock: what a supervisor checks before it starts
    /// anything when the profile is required.
    pub fn probe(&self) -> Vec<Refusal> {
        let me = self.clone();
        let mut refused = std::thread::spawn(move || me.apply_to_this_thread())
            .join()
            .unwrap_or_default();
        if self.lock_memory {
            // Only MCL_CURRENT's permission check matters here; unlocked at once.
            match mlockall(libc::MCL_CURRENT) {
                // SAFETY: munlockall takes nothing.
                Ok(()) => unsafe {
                    libc::munlockall();
                },
                Err(r) => refused.push(r),
            }
        }
        refused
    }
}

/// `mlockall(flags)`, refused as `realtime.lock_memory`.
fn mlockall(flags: i32) -> Result<(), Refusal> {
    // SAFETY: mlockall takes flags only and touches no memory of ours.
    if unsafe { libc::mlockall(flags) } == 0 {
        Ok(())
    } else {
        Err(Refusal {
            part: "mlock",
            key: "realtime.lock_memory",
            error: io::Error::last_os_error(),
        })
    }
}

fn set_fifo(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority as i32,
    };
    // SAFETY: pid 0 is the calling thread; `param` outlives the call.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        set.set(c).map_err(io::Error::from)?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_profile_asks_for_nothing() {
        let p = Profile::default();
        assert!(p.apply_to_this_thread().is_empty());
        assert!(p.apply_to_process().is_empty());
    }

    #[test]
    fn a_cpu_that_does_not_exist_is_refused_naming_the_key() {
        let p = Profile {
            // Within a CPU set (1024), but no machine this runs on has it.
            cpus: vec![1000],
            ..Profile::default()
        };
        let r = p.probe();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].key, "realtime.cpus");
        assert!(r[0]
            .to_string()
            .starts_with("realtime.cpus: refused by the system"));
    }
}
